package stages

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestFirewallRuleset(t *testing.T) {
	t.Parallel()
	got, err := nftablesRuleset(manifest.Firewall{
		Ports: []manifest.FirewallPort{
			{From: 8000, To: 8010, Protocol: "tcp"},
			{From: 8005, To: 8020, Protocol: "tcp"}, // overlaps: merged
			{From: 8021, To: 8021, Protocol: "tcp"}, // adjacent: merged
			{From: 6000, To: 6000, Protocol: "udp"},
			{From: 5000, To: 5000, Protocol: "sctp"},
			{From: 6000, To: 6001, Protocol: "dccp"},
		},
		EnabledServices: []string{"http", "dns"},
	})
	require.NoError(t, err)
	want := `#!/usr/sbin/nft -f
# Written by kiln: inbound traffic is dropped except what is listed here.

flush ruleset

table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iif "lo" accept
		meta l4proto { icmp, icmpv6 } accept
		tcp dport { 22, 53, 80, 8000-8021 } accept
		udp dport { 53, 6000 } accept
		sctp dport 5000 accept
		dccp dport 6000-6001 accept
	}

	chain forward {
		type filter hook forward priority filter; policy drop;
	}

	chain output {
		type filter hook output priority filter; policy accept;
	}
}
`
	require.Equal(t, want, got)
}

func TestFirewallServices(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		opts     manifest.Firewall
		tcp, udp string // the port lines, "" when absent
	}{
		{name: "ssh by default", opts: manifest.Firewall{}, tcp: "tcp dport 22 accept"},
		{name: "ssh disabled", opts: manifest.Firewall{DisabledServices: []string{"ssh"}}},
		{name: "ssh disabled, port kept", opts: manifest.Firewall{DisabledServices: []string{"ssh"}, Ports: []manifest.FirewallPort{{From: 2222, To: 2222, Protocol: "tcp"}}}, tcp: "tcp dport 2222 accept"},
		{name: "enabled and disabled", opts: manifest.Firewall{EnabledServices: []string{"ntp", "https"}, DisabledServices: []string{"https"}}, tcp: "tcp dport 22 accept", udp: "udp dport 123 accept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := nftablesRuleset(tc.opts)
			require.NoError(t, err)
			for proto, line := range map[string]string{"tcp": tc.tcp, "udp": tc.udp} {
				if line == "" {
					require.NotContains(t, got, proto+" dport")
				} else {
					require.Contains(t, got, "\t\t"+line+"\n")
				}
			}
		})
	}
}

func TestFirewallRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts manifest.Firewall
		want string
	}{
		{"unknown service", manifest.Firewall{EnabledServices: []string{"telnet"}}, "not a known service"},
		{"injected service", manifest.Firewall{EnabledServices: []string{"ssh accept; }"}}, "not a known service"},
		{"unknown disabled service", manifest.Firewall{DisabledServices: []string{"x"}}, "not a known service"},
		{"protocol", manifest.Firewall{Ports: []manifest.FirewallPort{{From: 1, To: 1, Protocol: "icmp"}}}, "not one of tcp, udp, sctp, dccp"},
		{"protocol injection", manifest.Firewall{Ports: []manifest.FirewallPort{{From: 1, To: 1, Protocol: "tcp dport 1-65535 accept\n"}}}, "not one of tcp, udp, sctp, dccp"},
		{"port 0", manifest.Firewall{Ports: []manifest.FirewallPort{{From: 0, To: 0, Protocol: "tcp"}}}, "1-65535"},
		{"port too big", manifest.Firewall{Ports: []manifest.FirewallPort{{From: 1, To: 70000, Protocol: "udp"}}}, "1-65535"},
		{"reversed", manifest.Firewall{Ports: []manifest.FirewallPort{{From: 9, To: 8, Protocol: "udp"}}}, "start not after"},
		{"closed protocol injection", manifest.Firewall{Closed: []manifest.FirewallPort{{From: 1, To: 1, Protocol: "tcp dport 1 accept\n"}}}, "closed[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := fileEnv(t, t.TempDir())
			require.ErrorContains(t, (&Firewall{Opts: tc.opts}).Run(context.Background(), env), tc.want)
		})
	}
}

// The ruleset is checked by the image's own nft.
func TestFirewallDebianTree(t *testing.T) {
	t.Parallel()
	tree := debianTree(t)
	env, log := testEnv(t, tree)
	opts := manifest.Firewall{
		Ports:           []manifest.FirewallPort{{From: 8000, To: 8010, Protocol: "tcp"}, {From: 8443, To: 8443, Protocol: "tcp"}, {From: 6000, To: 6100, Protocol: "udp"}},
		EnabledServices: []string{"https", "dns", "mdns"},
		Closed:          []manifest.FirewallPort{{From: 23, To: 23, Protocol: "tcp"}, {From: 546, To: 546, Protocol: "udp"}},
	}
	require.NoError(t, (&Firewall{Opts: opts}).Run(context.Background(), env), log.String())
	conf := readTree(t, tree, "/etc/nftables.conf")
	require.Contains(t, conf, "tcp dport { 22, 53, 443, 8000-8010, 8443 } accept")
	require.Contains(t, conf, "tcp dport 23 drop comment \"disabled services\"")
	require.Contains(t, conf, "udp dport 546 drop comment \"disabled services\"")
	require.Less(t, strings.Index(conf, "dport 546 drop"), strings.Index(conf, "dport { 22"), "closed ports are dropped before anything is accepted")
	// nft reads the file the same way it would at boot.
	listed := inTree(t, tree, "/usr/sbin/nft", "-c", "-f", "/etc/nftables.conf")
	require.Empty(t, listed)
}
