package stages

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Firewall writes /etc/nftables.conf: a table "inet filter" whose input
// chain drops everything except established and related traffic,
// loopback, ICMP and ICMPv6, and the listed ports; forwarding is dropped,
// output accepted. ssh is allowed unless DisabledServices names it. The
// Closed ports (those of disabled services) are dropped before any accept.
// EnabledServices are service names; their ports come from
// manifest.FirewallServices. Manifests kiln plans list every port in Ports
// (services resolved at plan time) and name only ssh, when disabled. When nft is installed in the tree the ruleset is
// checked with "nft -c" inside it. Enabling nftables.service (which loads
// the file at boot) is the Systemd stage's job.
type Firewall struct{ Opts manifest.Firewall }

// Validate implements Stage.
func (s *Firewall) Validate() error {
	_, err := nftablesRuleset(s.Opts)
	return err
}

// Run implements Stage.
func (s *Firewall) Run(ctx context.Context, env *Env) error {
	ruleset, err := nftablesRuleset(s.Opts)
	if err != nil {
		return err
	}
	if err := WriteFile(env.Tree, "/etc/nftables.conf", []byte(ruleset), 0o755); err != nil {
		return err
	}
	env.Logf("wrote /etc/nftables.conf")
	if !installed(env.Tree, "/usr/sbin/nft") {
		env.Logf("nft is not installed in the image; the ruleset is not checked")
		return nil
	}
	if err := env.Chroot(ctx, nil, "/usr/sbin/nft", "-c", "-f", "/etc/nftables.conf"); err != nil {
		return fmt.Errorf("checking /etc/nftables.conf with nft: %w", err)
	}
	return nil
}

// nftablesRuleset validates o and returns the ruleset.
func nftablesRuleset(o manifest.Firewall) (string, error) {
	for _, name := range slices.Concat(o.EnabledServices, o.DisabledServices) {
		if _, ok := manifest.FirewallServices[name]; !ok {
			return "", fmt.Errorf("firewall: %q is not a known service", name)
		}
	}
	ports := slices.Clone(o.Ports)
	for _, list := range []struct {
		name  string
		ports []manifest.FirewallPort
	}{{"ports", ports}, {"closed", o.Closed}} {
		for i, p := range list.ports {
			if !manifest.IsFirewallProtocol(p.Protocol) {
				return "", fmt.Errorf("firewall %s[%d]: protocol %q is not one of %s", list.name, i, p.Protocol, strings.Join(manifest.FirewallProtocols, ", "))
			}
			if p.From < 1 || p.To > 65535 || p.From > p.To {
				return "", fmt.Errorf("firewall %s[%d]: %d-%d: ports must be 1-65535 with the range start not after its end", list.name, i, p.From, p.To)
			}
		}
	}
	services := o.EnabledServices
	if !slices.Contains(o.DisabledServices, "ssh") && !slices.Contains(services, "ssh") {
		services = append([]string{"ssh"}, services...)
	}
	for _, name := range services {
		if !slices.Contains(o.DisabledServices, name) {
			ports = append(ports, manifest.FirewallServices[name]...)
		}
	}
	var b strings.Builder
	b.WriteString(`#!/usr/sbin/nft -f
# Written by kiln: inbound traffic is dropped except what is listed here.

flush ruleset

table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iif "lo" accept
		meta l4proto { icmp, icmpv6 } accept
`)
	for _, proto := range manifest.FirewallProtocols {
		if set := portSet(o.Closed, proto); set != "" {
			fmt.Fprintf(&b, "\t\t%s dport %s drop comment \"disabled services\"\n", proto, set)
		}
	}
	for _, proto := range manifest.FirewallProtocols {
		if set := portSet(ports, proto); set != "" {
			fmt.Fprintf(&b, "\t\t%s dport %s accept\n", proto, set)
		}
	}
	b.WriteString(`	}

	chain forward {
		type filter hook forward priority filter; policy drop;
	}

	chain output {
		type filter hook output priority filter; policy accept;
	}
}
`)
	return b.String(), nil
}

// portSet returns the nft set of proto's ports, overlapping and adjacent
// ranges merged (nft refuses overlapping intervals in a set), or "".
func portSet(ports []manifest.FirewallPort, proto string) string {
	var rs [][2]int
	for _, p := range ports {
		if p.Protocol == proto {
			rs = append(rs, [2]int{p.From, p.To})
		}
	}
	if len(rs) == 0 {
		return ""
	}
	slices.SortFunc(rs, func(a, b [2]int) int { return a[0] - b[0] })
	merged := [][2]int{rs[0]}
	for _, r := range rs[1:] {
		last := &merged[len(merged)-1]
		if r[0] <= last[1]+1 {
			last[1] = max(last[1], r[1])
			continue
		}
		merged = append(merged, r)
	}
	var elems []string
	for _, r := range merged {
		if r[0] == r[1] {
			elems = append(elems, strconv.Itoa(r[0]))
		} else {
			elems = append(elems, strconv.Itoa(r[0])+"-"+strconv.Itoa(r[1]))
		}
	}
	if len(elems) == 1 {
		return elems[0]
	}
	return "{ " + strings.Join(elems, ", ") + " }"
}
