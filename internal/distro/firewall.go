package distro

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// firewallServices maps the service names a blueprint may use (in
// firewall.services and in ports such as "ssh:tcp") to their ports.
var firewallServices = map[string][]manifest.FirewallPort{
	"ssh":           {{From: 22, To: 22, Protocol: "tcp"}},
	"http":          {{From: 80, To: 80, Protocol: "tcp"}},
	"https":         {{From: 443, To: 443, Protocol: "tcp"}},
	"dns":           {{From: 53, To: 53, Protocol: "tcp"}, {From: 53, To: 53, Protocol: "udp"}},
	"ntp":           {{From: 123, To: 123, Protocol: "udp"}},
	"dhcp":          {{From: 67, To: 67, Protocol: "udp"}},
	"dhcpv6-client": {{From: 546, To: 546, Protocol: "udp"}},
	"mdns":          {{From: 5353, To: 5353, Protocol: "udp"}},
	"smtp":          {{From: 25, To: 25, Protocol: "tcp"}},
	"smtps":         {{From: 465, To: 465, Protocol: "tcp"}},
	"submission":    {{From: 587, To: 587, Protocol: "tcp"}},
	"imap":          {{From: 143, To: 143, Protocol: "tcp"}},
	"imaps":         {{From: 993, To: 993, Protocol: "tcp"}},
	"pop3":          {{From: 110, To: 110, Protocol: "tcp"}},
	"pop3s":         {{From: 995, To: 995, Protocol: "tcp"}},
	"ldap":          {{From: 389, To: 389, Protocol: "tcp"}},
	"ldaps":         {{From: 636, To: 636, Protocol: "tcp"}},
	"kerberos":      {{From: 88, To: 88, Protocol: "tcp"}, {From: 88, To: 88, Protocol: "udp"}},
	"nfs":           {{From: 2049, To: 2049, Protocol: "tcp"}},
	"samba":         {{From: 139, To: 139, Protocol: "tcp"}, {From: 445, To: 445, Protocol: "tcp"}},
	"postgresql":    {{From: 5432, To: 5432, Protocol: "tcp"}},
	"mysql":         {{From: 3306, To: 3306, Protocol: "tcp"}},
	"redis":         {{From: 6379, To: 6379, Protocol: "tcp"}},
	"cockpit":       {{From: 9090, To: 9090, Protocol: "tcp"}},
	"prometheus":    {{From: 9090, To: 9090, Protocol: "tcp"}},
	"node-exporter": {{From: 9100, To: 9100, Protocol: "tcp"}},
}

// parsePort reads "22:tcp", "8000-8010:udp" or "ssh:tcp".
func parsePort(s string) ([]manifest.FirewallPort, error) {
	spec, proto, ok := strings.Cut(s, ":")
	if !ok || (proto != "tcp" && proto != "udp") {
		return nil, fmt.Errorf("%q is not a port (expected PORT:PROTO, START-END:PROTO or SERVICE:PROTO with PROTO tcp or udp, e.g. \"22:tcp\")", s)
	}
	if ports, ok := firewallServices[spec]; ok {
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
