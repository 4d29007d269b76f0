package distro

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// parsePort reads "22:tcp", "8000-8010:udp" or "ssh:tcp"; a service name
// is one of firewallService's.
func (ks *knownSets) parsePort(s string) ([]manifest.FirewallPort, error) {
	spec, proto, ok := strings.Cut(s, ":")
	if !ok || !manifest.IsFirewallProtocol(proto) {
		return nil, fmt.Errorf("%q is not a port (expected PORT:PROTO, START-END:PROTO or SERVICE:PROTO with PROTO tcp, udp, sctp or dccp, e.g. \"22:tcp\")", s)
	}
	if ports, ok := ks.firewallService(spec); ok {
		var out []manifest.FirewallPort
		for _, p := range ports {
			if p.Protocol == proto {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("service %q has no %s port", spec, proto)
		}
		return out, nil
	}
	fromS, toS, isRange := strings.Cut(spec, "-")
	if !isRange {
		toS = fromS
	}
	from, err1 := strconv.Atoi(fromS)
	to, err2 := strconv.Atoi(toS)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%q: %q is neither a port number nor a known service name", s, spec)
	}
	if from < 1 || to > 65535 || from > to {
		return nil, fmt.Errorf("%q: ports must be 1-65535 with the range start not after its end", s)
	}
	return []manifest.FirewallPort{{From: from, To: to, Protocol: proto}}, nil
}
