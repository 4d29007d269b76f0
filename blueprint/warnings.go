package blueprint

import "strings"

// Warnings lists settings that are valid but weaken the image, for callers
// to show beside a successful result. A nil blueprint has none.
func (b *Blueprint) Warnings() []Problem {
	var out []Problem
	c := b.GetCustomizations()
	for i, r := range c.GetRepositories() {
		if !r.ChecksSignatures() {
			out = append(out, Problem{
				Path:    fieldPath(indexPath("customizations.repositories", i), "gpgcheck"),
				Message: "signature checks are off: apt will install whatever this repository serves, so anyone who can alter it controls the image; give its key in gpgkeys instead",
			})
		}
	}
	for i, u := range c.GetUsers() {
		if u.Password != nil && strings.HasPrefix(*u.Password, "$1$") {
			out = append(out, Problem{
				Path:    fieldPath(indexPath("customizations.user", i), "password"),
				Message: "an MD5 crypt hash is weak; use a SHA-512 ($6$) or yescrypt ($y$) hash, or give the password for it to be hashed with SHA-512",
			})
		}
	}
	return out
}
