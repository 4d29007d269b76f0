package blueprint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/GehirnInc/crypt/sha512_crypt"
)

func TestPlaintextPasswordIsHashed(t *testing.T) {
	t.Parallel()
	const secret = "correct horse battery staple"
	doc := fmt.Sprintf(`{"name": "a", "customizations": {"user": [{"name": "alice", "password": %q}]}}`, secret)
	bp, err := Parse([]byte(doc), FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	hash := *bp.Customizations.User[0].Password
	if !strings.HasPrefix(hash, "$6$") || len(strings.Split(hash, "$")[2]) != saltLength {
		t.Fatalf("want a SHA-512 crypt hash with a %d-character salt, have %q", saltLength, hash)
	}
	if err := sha512_crypt.New().Verify(hash, []byte(secret)); err != nil {
		t.Fatalf("the hash does not verify: %v", err)
	}
	for name, export := range map[string]func() ([]byte, error){"TOML": bp.ToTOML, "JSON": bp.ToJSON} {
		data, err := export()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Fatalf("the %s export holds the plaintext password", name)
		}
	}
	if strings.Contains(fmt.Sprintf("%+v", *bp.Customizations.User[0].Password), secret) {
		t.Fatal("the blueprint holds the plaintext password")
	}
	// Parsing the hash again keeps it as it is.
	again, err := Parse([]byte(fmt.Sprintf(`{"name": "a", "customizations": {"user": [{"name": "alice", "password": %q}]}}`, hash)), FormatJSON)
	if err != nil || *again.Customizations.User[0].Password != hash {
		t.Fatalf("a hash must be kept: %v", err)
	}
}

func TestPasswordHashingIsSeeded(t *testing.T) {
	t.Parallel()
	doc := []byte(`{"name": "a", "customizations": {"user": [{"name": "alice", "password": "pw"}]}}`)
	parse := func(seed byte) string {
		bp, err := ParseWithOptions(doc, FormatJSON, ParseOptions{Rand: bytes.NewReader(bytes.Repeat([]byte{seed}, 64))})
		if err != nil {
			t.Fatal(err)
		}
		return *bp.Customizations.User[0].Password
	}
	if parse(1) != parse(1) {
		t.Fatal("the same salt source must give the same hash")
	}
	if parse(1) == parse(2) {
		t.Fatal("different salts must give different hashes")
	}
	_, err := ParseWithOptions(doc, FormatJSON, ParseOptions{Rand: bytes.NewReader(nil)})
	if !errors.Is(err, io.EOF) {
		t.Fatalf("an exhausted salt source must fail the parse: %v", err)
	}
}

func TestPlaintextPasswordNeverAppearsInErrors(t *testing.T) {
	t.Parallel()
	secrets := []string{"hunter2-secret", "$6$bad-secret", "!", "x" + strings.Repeat("y", MaxPasswordLength)}
	for _, secret := range secrets {
		for _, format := range []Format{FormatJSON, FormatTOML} {
			doc := map[string]any{"name": "a", "customizations": map[string]any{"user": []any{
				map[string]any{"name": "Bad Name", "password": secret, "uid": "wrong"},
			}}}
			_, err := Parse([]byte(encodeDoc(t, doc, format)), format)
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("%v: the error repeats the password: %v", format, err)
			}
		}
	}
	// A value of the wrong type is not repeated either.
	_, err := Parse([]byte(`{"name": "a", "customizations": {"user": [{"name": "a", "password": ["hunter2-secret"]}]}}`), FormatJSON)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("have %v", err)
	}
}

func TestClassifyPassword(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pw   string
		want passwordKind
	}{
		{"secret", passwordPlain},
		{"$notahash", passwordPlain},
		{"$6$", passwordMalformed},
		{"$6$salt$short", passwordMalformed},
		{"$6$salt$" + strings.Repeat("a", 86), passwordHash},
		{"$6$rounds=5000$salt$" + strings.Repeat("a", 86), passwordHash},
		{"$6$toolongsaltvalue0$" + strings.Repeat("a", 86), passwordMalformed},
		{"$5$salt$" + strings.Repeat("a", 43), passwordHash},
		{"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7", passwordHash},
		{"$y$j9T$salt", passwordMalformed},
		{"$2b$12$" + strings.Repeat("a", 53), passwordHash},
		{"$2b$12$" + strings.Repeat("a", 52), passwordMalformed},
		{"$1$abc$OGyl6dDvZCDiGmIVbeuCq/", passwordHash},
		{"$6$salt$" + strings.Repeat("a", 85) + ";", passwordMalformed},
	}
	for _, tc := range cases {
		if got := classifyPassword(tc.pw); got != tc.want {
			t.Errorf("%q: have %d, want %d", tc.pw, got, tc.want)
		}
	}
}

func TestHashPasswordsLeavesInvalidOnesAlone(t *testing.T) {
	t.Parallel()
	empty, lock := "", "!"
	bp := &Blueprint{Name: "a", Customizations: &Customizations{User: []UserCustomization{{Name: "a", Password: &empty}, {Name: "b", Password: &lock}, {Name: "c"}}}}
	if err := bp.HashPasswords(zeroReader{}); err != nil {
		t.Fatal(err)
	}
	if *bp.Customizations.User[0].Password != "" || *bp.Customizations.User[1].Password != "!" {
		t.Fatal("invalid passwords must be left for Validate to report")
	}
	data, _ := json.Marshal(bp)
	if !strings.Contains(string(data), `"name":"c"`) {
		t.Fatalf("have %s", data)
	}
	if err := (*Blueprint)(nil).HashPasswords(zeroReader{}); err != nil {
		t.Fatalf("a nil blueprint has nothing to hash: %v", err)
	}
}

func TestSyntaxErrorsDoNotRepeatValues(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"password = hunter2secret", "name = \"a\"\n[[customizations.user]]\npassword = hunter2secret"} {
		_, err := Parse([]byte(doc), FormatTOML)
		if err == nil || strings.Contains(err.Error(), "hunter") {
			t.Fatalf("have %v", err)
		}
	}
	_, err := Parse([]byte(`{"name": "a", "customizations": {"user": [{"password": hunter2secret}]}}`), FormatJSON)
	if err == nil || strings.Contains(err.Error(), "hunter") {
		t.Fatalf("have %v", err)
	}
}

func TestMistypedPasswordIsNotRepeated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc    string
		format Format
	}{
		{"name = \"a\"\n[[customizations.user]]\nname = \"u\"\npassword = 987654.321", FormatTOML},
		{`{"name": "a", "customizations": {"user": [{"name": "u", "password": 987654.321}]}}`, FormatJSON},
		{`{"name": "a", "customizations": {"user": [{"name": "u", "password": 987654321}]}}`, FormatJSON},
	} {
		errs := problemsOf(t, tc.doc, tc.format)
		if !hasProblem(errs, "customizations.user[0].password", "expected a string") || strings.Contains(errs.Error(), "987654") {
			t.Fatalf("have %v", errs)
		}
	}
}
