package keyfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return data
}

// keyServer serves the files of the map over TLS and returns a fetcher
// that trusts it.
func keyServer(t *testing.T, files map[string][]byte) (*httptest.Server, *Fetcher) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "http://plain.example.invalid/key.asc", http.StatusFound)
			return
		}
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv, &Fetcher{Client: srv.Client(), MaxSize: 4096}
}

func TestFetch(t *testing.T) {
	t.Parallel()
	armored, binary := readTestdata(t, "key.asc"), readTestdata(t, "key.gpg")
	srv, f := keyServer(t, map[string][]byte{
		"/key.asc":    armored,
		"/key.gpg":    binary,
		"/big.asc":    []byte(strings.Repeat("x", 5000)),
		"/page.html":  []byte("<html>Not here</html>"),
		"/secret.asc": []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlFgE\n-----END PGP PRIVATE KEY BLOCK-----\n"),
	})
	ctx := context.Background()

	t.Run("armored", func(t *testing.T) {
		k, err := f.Fetch(ctx, srv.URL+"/key.asc")
		require.NoError(t, err)
		sum := sha256.Sum256(armored)
		assert.Equal(t, hex.EncodeToString(sum[:]), k.SHA256, "pinned by the bytes the server sent")
		assert.Equal(t, srv.URL+"/key.asc", k.URL)
		// Re-armored, it holds the same packets gpg exported.
		p, err := dearmorAll(k.Armored)
		require.NoError(t, err)
		assert.Equal(t, binary, p)
	})
	t.Run("binary is armored", func(t *testing.T) {
		k, err := f.Fetch(ctx, srv.URL+"/key.gpg")
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(k.Armored, armorBegin+"\n"))
		p, err := dearmorAll(k.Armored)
		require.NoError(t, err)
		assert.Equal(t, binary, p)
	})
	for _, tc := range []struct{ name, url, want string }{
		{"http refused", "http://" + strings.TrimPrefix(srv.URL, "https://") + "/key.asc", "not an https URL"},
		{"too large", srv.URL + "/big.asc", "larger than 4096 bytes"},
		{"not a key", srv.URL + "/page.html", "not an OpenPGP public key"},
		{"secret key", srv.URL + "/secret.asc", "private key"},
		{"404", srv.URL + "/missing.asc", "404"},
		{"redirect to http", srv.URL + "/moved", "not https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Fetch(ctx, tc.url)
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		_, err := (&Fetcher{Client: AnyAddressClient()}).Fetch(ctx, srv.URL+"/key.asc")
		require.ErrorContains(t, err, "certificate")
	})
}

// Every failed key URL of a blueprint is a problem at its own field, and
// a URL named twice is fetched once.
func TestBlueprint(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	armored := readTestdata(t, "key.asc")
	files := map[string][]byte{"/key.asc": armored, "/big.asc": []byte(strings.Repeat("x", 5000)), "/page.html": []byte("<html>Not here</html>")}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	f := &Fetcher{Client: srv.Client(), MaxSize: 4096}
	off := false
	bp := &blueprint.Blueprint{Name: "k", Customizations: &blueprint.Customizations{Repositories: []blueprint.RepositoryCustomization{
		{ID: "a", GPGKeys: []string{srv.URL + "/key.asc", string(armored), srv.URL + "/gone.asc", srv.URL + "/big.asc", srv.URL + "/page.html"}},
		{ID: "b", GPGKeys: []string{srv.URL + "/key.asc", "http://plain.example.invalid/key.asc"}},
		{ID: "unchecked", GPGCheck: &off, GPGKeys: []string{srv.URL + "/other.asc"}},
	}}}
	keys, err := f.Blueprint(context.Background(), bp)
	var problems blueprint.Errors
	require.True(t, errors.As(err, &problems), "%v", err)
	want := []struct{ path, message string }{
		{"customizations.repositories[0].gpgkeys[2]", "404"},
		{"customizations.repositories[0].gpgkeys[3]", "larger than 4096 bytes"},
		{"customizations.repositories[0].gpgkeys[4]", "not an OpenPGP public key"},
		{"customizations.repositories[1].gpgkeys[1]", "not an https URL"},
	}
	require.Len(t, problems, len(want), "%v", problems)
	for i, w := range want {
		assert.Equal(t, w.path, problems[i].Path)
		assert.Contains(t, problems[i].Message, w.message)
	}
	require.Contains(t, keys, srv.URL+"/key.asc")
	assert.Len(t, keys, 1)
	assert.Equal(t, int32(4), hits.Load(), "key.asc once and each failing URL once; the unchecked repository's key not at all")
}

func TestMerge(t *testing.T) {
	t.Parallel()
	one, two := string(readTestdata(t, "key.asc")), string(readTestdata(t, "second.asc"))
	merged, err := Merge([]string{one, two})
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(merged, armorBegin), "one block, as apt's inline Signed-By needs")
	p1, _ := dearmorAll(one)
	p2, _ := dearmorAll(two)
	p, err := dearmorAll(merged)
	require.NoError(t, err)
	assert.Equal(t, append(append([]byte{}, p1...), p2...), p)

	damaged := strings.Replace(one, "m", "n", 1)
	_, err = Merge([]string{one, damaged})
	require.ErrorContains(t, err, "key 2")
}

func TestNormalizeRejects(t *testing.T) {
	t.Parallel()
	binary := readTestdata(t, "key.gpg")
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not an OpenPGP public key"},
		{"text", []byte("hello"), "not an OpenPGP public key"},
		{"cut off", binary[:len(binary)-10], "damaged"},
		{"signature packet first", append([]byte{0xc2, 0x01, 0x00}, binary...), "not an OpenPGP public key"},
		{"secret key packet", append(append([]byte{}, binary...), 0xc5, 0x01, 0x00), "secret key"},
		{"bad checksum", badChecksum(t), "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Normalize(tc.data)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// badChecksum is the armored test key with its checksum line replaced.
func badChecksum(t *testing.T) []byte {
	lines := strings.Split(string(readTestdata(t, "key.asc")), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "=") && len(l) == 5 {
			lines[i] = "=AAAA"
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// A fetcher given no client reaches public addresses only: a key URL in a
// tenant's blueprint cannot make a build host call its own loopback or
// network, neither by address nor by a name that resolves there.
func TestDefaultClientRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	srv, _ := keyServer(t, map[string][]byte{"/key.asc": readTestdata(t, "key.asc")})
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	require.NoError(t, err)
	for _, u := range []string{srv.URL + "/key.asc", "https://localhost:" + port + "/key.asc"} {
		_, err := (&Fetcher{}).Fetch(context.Background(), u)
		require.ErrorContains(t, err, "not a public address", u)
	}
	for addr, public := range map[string]bool{
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fe80::1": false, "fd00::1": false, "::ffff:127.0.0.1": false,
		"64:ff9b::a00:1": false, "224.0.0.1": false, "192.0.2.1": false,
		"1.1.1.1": true, "151.101.2.132": true, "2a04:4e42::644": true,
	} {
		assert.Equal(t, public, isPublic(netip.MustParseAddr(addr)), addr)
	}
}
