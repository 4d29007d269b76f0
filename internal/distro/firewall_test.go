package distro

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// Ports take the four protocols firewalld takes in a port, by number,
// range or /etc/services name; anything else is refused naming them.
func TestParsePortProtocols(t *testing.T) {
	t.Parallel()
	ks, err := loadSets(dataFS)
	require.NoError(t, err)
	for in, want := range map[string][]manifest.FirewallPort{
		"22:tcp":         {{From: 22, To: 22, Protocol: "tcp"}},
		"6000:udp":       {{From: 6000, To: 6000, Protocol: "udp"}},
		"5000:sctp":      {{From: 5000, To: 5000, Protocol: "sctp"}},
		"6000-6001:dccp": {{From: 6000, To: 6001, Protocol: "dccp"}},
		"amqp:sctp":      {{From: 5672, To: 5672, Protocol: "sctp"}},
	} {
		got, err := ks.parsePort(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for in, msg := range map[string]string{
		"22:icmp":  "with PROTO tcp, udp, sctp or dccp",
		"22":       "with PROTO tcp, udp, sctp or dccp",
		"ssh:sctp": `service "ssh" has no sctp port`,
	} {
		_, err := ks.parsePort(in)
		if assert.Error(t, err, in) {
			assert.Contains(t, err.Error(), msg, in)
		}
	}
}

// An enabled service opens its tcp and udp ports only, as before sctp
// ports could be named: amqp's sctp port stays closed unless a port
// names it.
func TestEnabledServiceOpensTCPAndUDP(t *testing.T) {
	t.Parallel()
	ks, err := loadSets(dataFS)
	require.NoError(t, err)
	fw, err := ks.firewall(&blueprint.FirewallCustomization{Services: &blueprint.FirewallServicesCustomization{Enabled: []string{"amqp"}}})
	require.NoError(t, err)
	for _, p := range fw.Ports {
		assert.NotEqual(t, "sctp", p.Protocol, "%+v", p)
	}
	assert.Contains(t, fw.Ports, manifest.FirewallPort{From: 5672, To: 5672, Protocol: "tcp"})
	fw, err = ks.firewall(&blueprint.FirewallCustomization{Ports: []string{"amqp:sctp"}})
	require.NoError(t, err)
	assert.Contains(t, fw.Ports, manifest.FirewallPort{From: 5672, To: 5672, Protocol: "sctp"})
}
