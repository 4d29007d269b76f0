package blueprint

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSSHDParses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc string
		format    Format
		want      RootLogin
	}{
		{"toml bool", "name = \"s\"\n[customizations.sshd]\npassword_authentication = false\nclient_alive_interval = 30\npermit_root_login = false\n", FormatTOML, "no"},
		{"toml word", "name = \"s\"\n[customizations.sshd]\npermit_root_login = \"prohibit-password\"\n", FormatTOML, "prohibit-password"},
		{"json bool", `{"name": "s", "customizations": {"sshd": {"permit_root_login": true}}}`, FormatJSON, "yes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bp, err := Parse([]byte(tc.doc), tc.format)
			require.NoError(t, err)
			assert.Equal(t, tc.want, bp.Customizations.SSHD.PermitRootLogin)
			out, err := bp.ToJSON()
			require.NoError(t, err)
			again, err := Parse(out, FormatJSON)
			require.NoError(t, err)
			assert.Equal(t, bp.Customizations.SSHD, again.Customizations.SSHD)
		})
	}
	bp, err := Parse([]byte("name = \"s\"\n[customizations.sshd]\npassword_authentication = false\nclient_alive_interval = 30\n"), FormatTOML)
	require.NoError(t, err)
	s := bp.Customizations.SSHD
	require.NotNil(t, s.PasswordAuthentication)
	assert.False(t, *s.PasswordAuthentication)
	require.NotNil(t, s.ClientAliveInterval)
	assert.Equal(t, 30, *s.ClientAliveInterval)
}

func TestRootLoginUnmarshalJSON(t *testing.T) {
	t.Parallel()
	var s SSHDCustomization
	require.NoError(t, json.Unmarshal([]byte(`{"permit_root_login": false}`), &s))
	assert.Equal(t, RootLogin("no"), s.PermitRootLogin)
	require.Error(t, json.Unmarshal([]byte(`{"permit_root_login": 1}`), &s))
}

func TestSSHDProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, doc, path, want string
	}{
		{"unknown key", "[customizations.sshd]\nport = 2222", "customizations.sshd.port", "known fields here are password_authentication, challenge_response_authentication, client_alive_interval, permit_root_login"},
		{"typo", "[customizations.sshd]\npasword_authentication = false", "customizations.sshd.pasword_authentication", `did you mean "password_authentication"?`},
		{"config table", "[customizations.sshd.config]\nPasswordAuthentication = false", "customizations.sshd.config", "write the sshd options directly in customizations.sshd"},
		{"empty", "[customizations.sshd]", "customizations.sshd", "sets nothing"},
		{"bad root login", "[customizations.sshd]\npermit_root_login = \"sometimes\"", "customizations.sshd.permit_root_login", `"sometimes" is not a PermitRootLogin value`},
		{"old root login word", "[customizations.sshd]\npermit_root_login = \"without-password\"", "customizations.sshd.permit_root_login", `old name of "prohibit-password"`},
		{"root login number", "[customizations.sshd]\npermit_root_login = 1", "customizations.sshd.permit_root_login", "expected true, false or one of"},
		{"negative interval", "[customizations.sshd]\nclient_alive_interval = -5", "customizations.sshd.client_alive_interval", "-5 is out of range"},
		{"password not bool", "[customizations.sshd]\npassword_authentication = \"no\"", "customizations.sshd.password_authentication", "expected a boolean"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := problemsOf(t, "name = \"x\"\n"+tc.doc, FormatTOML)
			if !hasProblem(errs, tc.path, tc.want) {
				t.Fatalf("want a problem at %q containing %q, have:\n%v", tc.path, tc.want, errs)
			}
		})
	}
}
