package keyfetch

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// PublicClient is the client a Fetcher uses when given none: it connects
// only to public addresses. A blueprint is a tenant's input, so a key URL
// must not make a build host reach what only it can reach — its loopback,
// the private networks it sits in, a cloud's metadata address. The check
// is made on the address actually dialled, after name resolution and on
// every redirect, so a name that resolves to a private address is refused
// too.
func PublicClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: refusePrivate}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // a proxy would dial for us, past the check
	transport.DialContext = dialer.DialContext
	return &http.Client{Timeout: DefaultTimeout, Transport: transport}
}

// AnyAddressClient is a client that may reach any address, for a user's
// own machine (kiln build, kiln manifest), where the blueprint is the
// user's and a key on the local network is theirs to name.
func AnyAddressClient() *http.Client {
	return &http.Client{Timeout: DefaultTimeout}
}

// refusePrivate is a net.Dialer Control that refuses every address that is
// not a public unicast one.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refusing to connect to %s: %w", address, err)
	}
	if !isPublic(ap.Addr()) {
		return fmt.Errorf("refusing to fetch a key from %s: not a public address (loopback, private, link-local and similar addresses are not fetched for a blueprint)", ap.Addr())
	}
	return nil
}

// nonPublic are ranges that are not public unicast beyond what netip's
// own predicates name: shared address space (RFC 6598), IETF protocol
// assignments, documentation and benchmarking ranges, and NAT64's
// well-known prefix (which would reach IPv4 addresses behind it).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("2001:db8::/32"),
}

func isPublic(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsMulticast() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
