package stages

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// testCA returns a self-signed CA certificate as PEM, and its key as PEM.
func testCA(t *testing.T, name string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Unix(1700000000, 0),
		NotAfter:              time.Unix(1700000000, 0).Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func TestCACertsDebianTree(t *testing.T) {
	t.Parallel()
	tree := debianTree(t)
	env, _ := testEnv(t, tree)
	ca1, _ := testCA(t, "Kiln Test CA One")
	ca2, _ := testCA(t, "Kiln Test CA Two")
	require.NoError(t, (&CACerts{Opts: manifest.CACerts{PEMCerts: []string{ca1, "\n" + ca2 + "\n"}}}).Run(context.Background(), env))
	require.Equal(t, ca1, readTree(t, tree, "/usr/local/share/ca-certificates/kiln-0.crt"))
	require.Equal(t, ca2, readTree(t, tree, "/usr/local/share/ca-certificates/kiln-1.crt"))
	for _, n := range []string{"kiln-0.pem", "kiln-1.pem"} {
		target, err := os.Readlink(filepath.Join(tree, "etc/ssl/certs", n))
		require.NoError(t, err, "update-ca-certificates linked %s", n)
		require.Contains(t, target, "/usr/local/share/ca-certificates/")
	}
	bundle := readTree(t, tree, "/etc/ssl/certs/ca-certificates.crt")
	require.Contains(t, bundle, ca1)
	require.Contains(t, bundle, ca2)
}

func TestCACertsRejects(t *testing.T) {
	t.Parallel()
	ca, key := testCA(t, "x")
	for _, tc := range []struct {
		name, pem, want string
	}{
		{"empty", "", "no PEM certificate"},
		{"private key", key, "private key"},
		{"key after certificate", ca + key, "private key"},
		{"garbage after", ca + "rm -rf /\n", "text follows"},
		{"bad der", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a valid X.509 certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := fileEnv(t, t.TempDir())
			require.ErrorContains(t, (&CACerts{Opts: manifest.CACerts{PEMCerts: []string{tc.pem}}}).Run(context.Background(), env), tc.want)
		})
	}
	t.Run("no ca-certificates", func(t *testing.T) {
		t.Parallel()
		env, _ := fileEnv(t, t.TempDir())
		require.ErrorContains(t, (&CACerts{Opts: manifest.CACerts{PEMCerts: []string{ca}}}).Run(context.Background(), env), "add the ca-certificates package")
	})
}
