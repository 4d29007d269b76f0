package manifest

// FirewallServices maps the service names a Firewall stage may use to
// their ports. They are firewalld's names that users write in blueprints,
// some of which /etc/services lacks ("dns", "dhcpv6-client", "cockpit");
// for a blueprint, other names are looked up in the distribution's
// /etc/services, and the planner passes the stage ports, not names.
var FirewallServices = map[string][]FirewallPort{
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

// FirewallProtocols are the transport protocols whose ports a Firewall
// stage opens or closes: those firewalld takes in a port (so blueprints
// written for image-builder carry over) and nftables matches by port.
var FirewallProtocols = []string{"tcp", "udp", "sctp", "dccp"}

// IsFirewallProtocol tells whether proto is one of FirewallProtocols.
func IsFirewallProtocol(proto string) bool {
	for _, p := range FirewallProtocols {
		if p == proto {
			return true
		}
	}
	return false
}
