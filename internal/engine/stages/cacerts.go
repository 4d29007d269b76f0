package stages

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// CACerts writes each PEM certificate to
// /usr/local/share/ca-certificates/kiln-<n>.crt and runs
// update-ca-certificates inside the tree (ca-certificates must be
// installed), which adds them to /etc/ssl/certs.
type CACerts struct{ Opts manifest.CACerts }

// Run implements Stage.
func (s *CACerts) Run(ctx context.Context, env *Env) error {
	files, err := s.files()
	if err != nil {
		return err
	}
	if !installed(env.Tree, "/usr/sbin/update-ca-certificates") {
		return errors.New("cacerts: update-ca-certificates is not installed in the image; add the ca-certificates package")
	}
	for i, data := range files {
		p := fmt.Sprintf("/usr/local/share/ca-certificates/kiln-%d.crt", i)
		if err := WriteFile(env.Tree, p, data, 0o644); err != nil {
			return err
		}
		env.Logf("wrote %s", p)
	}
	if err := env.Chroot(ctx, nil, "/usr/sbin/update-ca-certificates"); err != nil {
		return fmt.Errorf("update-ca-certificates: %w", err)
	}
	return nil
}

// Validate implements Stage.
func (s *CACerts) Validate() error {
	_, err := s.files()
	return err
}

// files checks the certificates and returns each bundle re-encoded.
func (s *CACerts) files() ([][]byte, error) {
	if len(s.Opts.PEMCerts) == 0 {
		return nil, errors.New("cacerts: no certificates given")
	}
	var files [][]byte
	for i, text := range s.Opts.PEMCerts {
		data, err := checkPEMCerts(text)
		if err != nil {
			return nil, fmt.Errorf("cacerts pem_certs[%d]: %w", i, err)
		}
		files = append(files, data)
	}
	return files, nil
}

// checkPEMCerts returns text re-encoded as PEM when it holds one or more
// X.509 certificates and nothing else.
func checkPEMCerts(text string) ([]byte, error) {
	rest := []byte(text)
	var out []byte
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("block %d is a private key; give only certificates, and treat the key as leaked", n)
			}
			return nil, fmt.Errorf("block %d is a %q, not a CERTIFICATE", n, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("block %d is not a valid X.509 certificate: %w", n, err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes})...)
	}
	if len(out) == 0 {
		return nil, errors.New(`no PEM certificate found (expected "-----BEGIN CERTIFICATE-----" blocks)`)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("text follows the last certificate; give only PEM certificates")
	}
	return out, nil
}
