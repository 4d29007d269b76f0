package blueprint

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/GehirnInc/crypt/sha512_crypt"
)

// cryptAlphabet is the alphabet of crypt(3) salts and hashes.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// saltLength is the length of the salts HashPasswords makes: the longest
// SHA-512 crypt allows.
const saltLength = 16

// passwordKind classifies a password field's value.
type passwordKind int

const (
	passwordPlain     passwordKind = iota // clear text, to be hashed
	passwordHash                          // a well-formed crypt(3) hash
	passwordMalformed                     // starts like a hash, but is not one
)

// cryptHashSyntax holds the shape of the crypt(3) hashes accepted as given,
// by method prefix.
func cryptHashSyntax(prefix string) *regexp.Regexp {
	const c = `[./0-9A-Za-z]`
	switch prefix {
	case "$1$": // MD5
		return regexp.MustCompile(`^\$1\$` + c + `{0,8}\$` + c + `{22}$`)
	case "$5$": // SHA-256
		return regexp.MustCompile(`^\$5\$(rounds=[0-9]{1,9}\$)?` + c + `{0,16}\$` + c + `{43}$`)
	case "$6$": // SHA-512
		return regexp.MustCompile(`^\$6\$(rounds=[0-9]{1,9}\$)?` + c + `{0,16}\$` + c + `{86}$`)
	case "$2a$", "$2b$", "$2y$": // bcrypt
		return regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$` + c + `{53}$`)
	case "$y$", "$gy$", "$7$": // yescrypt, gost-yescrypt, scrypt
		return regexp.MustCompile(`^\$(y|gy|7)\$` + c + `+\$` + c + `*\$` + c + `+$`)
	}
	return nil
}

// classifyPassword tells a crypt(3) hash from clear text. A value that
// starts with a known method prefix is meant as a hash; if it does not have
// that method's shape it is malformed, not clear text.
func classifyPassword(pw string) passwordKind {
	for _, prefix := range []string{"$1$", "$5$", "$6$", "$2a$", "$2b$", "$2y$", "$y$", "$gy$", "$7$"} {
		if strings.HasPrefix(pw, prefix) {
			if cryptHashSyntax(prefix).MatchString(pw) {
				return passwordHash
			}
			return passwordMalformed
		}
	}
	return passwordPlain
}

// IsPasswordHash reports whether s is a crypt(3) hash in a form this package
// accepts as given: SHA-512 ($6$), SHA-256 ($5$), yescrypt ($y$),
// gost-yescrypt ($gy$), scrypt ($7$), bcrypt ($2b$, $2a$, $2y$) or MD5 ($1$).
func IsPasswordHash(s string) bool {
	return classifyPassword(s) == passwordHash
}

// HashPasswords replaces every plaintext user password by its SHA-512 crypt
// hash, with a 16-character salt read from r. Hashes are kept as they are;
// an empty or malformed password is left for Validate to report. Parse
// calls it; blueprints built in code call it before Validate.
func (b *Blueprint) HashPasswords(r io.Reader) error {
	for i, u := range b.GetCustomizations().GetUsers() {
		if u.Password == nil || !hashablePassword(*u.Password) {
			continue
		}
		hash, err := hashPassword(*u.Password, r)
		if err != nil {
			return fmt.Errorf("hashing the password of customizations.user[%d]: %w", i, err)
		}
		b.Customizations.User[i].Password = &hash
	}
	return nil
}

// hashablePassword reports whether pw is clear text that may be hashed.
func hashablePassword(pw string) bool {
	return classifyPassword(pw) == passwordPlain && pw != "" && len(pw) <= MaxPasswordLength &&
		!isLockMarker(pw) && !strings.ContainsAny(pw, "\x00\n\r")
}

// isLockMarker reports whether pw is one of the /etc/shadow markers for a
// locked account, which a user may mistake for a way to lock one here.
func isLockMarker(pw string) bool {
	return pw == "!" || pw == "!!" || pw == "*"
}

func hashPassword(pw string, r io.Reader) (string, error) {
	salt := make([]byte, saltLength)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("reading a salt: %w", err)
	}
	for i, c := range salt {
		salt[i] = cryptAlphabet[int(c)%len(cryptAlphabet)]
	}
	hash, err := sha512_crypt.New().Generate([]byte(pw), append([]byte("$6$"), salt...))
	if err != nil {
		return "", fmt.Errorf("SHA-512 crypt: %w", err)
	}
	return hash, nil
}
