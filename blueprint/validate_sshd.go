package blueprint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// RootLogin is sshd's PermitRootLogin as a blueprint gives it: true or
// false, or one of sshd's words "yes", "no", "prohibit-password" and
// "forced-commands-only". A boolean is kept as "yes" or "no"; "" is unset.
type RootLogin string

// rootLoginValues are the PermitRootLogin values accepted.
var rootLoginValues = []string{"yes", "no", "prohibit-password", "forced-commands-only"}

// UnmarshalJSON reads a PermitRootLogin given as a boolean or a string.
func (r *RootLogin) UnmarshalJSON(data []byte) error {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("reading permit_root_login: %w", err)
	}
	var ps problems
	var out RootLogin
	decoder{format: FormatJSON, ps: &ps}.decodeRootLogin("permit_root_login", raw, reflect.ValueOf(&out).Elem())
	if err := ps.err(); err != nil {
		return err
	}
	*r = out
	return nil
}

func (d decoder) decodeRootLogin(path string, raw any, v reflect.Value) {
	switch x := raw.(type) {
	case bool:
		if x {
			v.SetString("yes")
		} else {
			v.SetString("no")
		}
	case string:
		if s, ok := d.str(path, raw); ok {
			v.SetString(s)
		}
	default:
		d.wrongType(path, `true, false or one of "prohibit-password" and "forced-commands-only"`, raw)
	}
}

// MaxClientAliveInterval is the largest sshd.client_alive_interval, in
// seconds (a day).
const MaxClientAliveInterval = 86400

func (v validator) sshd(path string, s *SSHDCustomization) {
	if s == nil {
		return
	}
	if s.PasswordAuthentication == nil && s.ChallengeResponseAuthentication == nil && s.ClientAliveInterval == nil && s.PermitRootLogin == "" {
		v.add(path, "sets nothing; give at least one of password_authentication, challenge_response_authentication, client_alive_interval and permit_root_login, or remove it")
	}
	if n := s.ClientAliveInterval; n != nil && (*n < 0 || *n > MaxClientAliveInterval) {
		v.add(fieldPath(path, "client_alive_interval"), "%d is out of range; give the seconds between keep-alive messages, 0 (off) to %d", *n, MaxClientAliveInterval)
	}
	if r := string(s.PermitRootLogin); r != "" && !slices.Contains(rootLoginValues, r) {
		msg := fmt.Sprintf("%s is not a PermitRootLogin value; use true, false, \"prohibit-password\" or \"forced-commands-only\"", quote(r))
		if r == "without-password" {
			msg += ` ("without-password" is the old name of "prohibit-password")`
		}
		v.add(fieldPath(path, "permit_root_login"), "%s", strings.TrimSpace(msg))
	}
}
