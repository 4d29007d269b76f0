package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The mistakes a person makes in a form, all at once (a host name with an
// underscore, a user called "Admin User", a group with a capital letter):
// every endpoint a client sends a blueprint to answers with one error
// item per mistake, each naming its field, so that a form can show each
// at its control from one answer.
func TestFormMistakesOneItemEach(t *testing.T) {
	ts := newTestServer(t, nil)
	b := composeBody()
	cust := b["customizations"].(map[string]any)
	cust["hostname"] = "web_01"
	user := cust["users"].([]any)[0].(map[string]any)
	user["name"] = "Admin User"
	user["groups"] = []any{"sudo", "Web-Admins"}
	bp := map[string]any{"name": "web", "distribution": "debian-12", "image_requests": b["image_requests"], "customizations": cust}

	want := []string{"customizations.hostname", "customizations.users[0].name", "customizations.users[0].groups[1]"}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/compose", b},
		{"POST", "/blueprints", bp},
		{"POST", "/blueprints/render", bp},
	} {
		r := ts.do(t, "acme", c.method, c.path, c.body)
		require.Equal(t, http.StatusBadRequest, r.status, "%s %s: %s", c.method, c.path, r.body)
		items := r.fields(t)
		assert.ElementsMatch(t, want, itemFields(t, r), "%s %s: %s", c.method, c.path, r.body)
		for _, it := range items {
			assert.True(t, strings.HasPrefix(it.Detail, it.Field+": "), "%s %s: the detail %q names its field", c.method, c.path, it.Detail)
			assert.Equal(t, "Bad Request", it.Title)
		}
	}
	r := ts.do(t, "acme", "GET", "/blueprints", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.EqualValues(t, 0, r.json(t)["meta"].(map[string]any)["count"], "nothing was stored")
}

// A port takes the four protocols of image-builder's document (tcp, udp,
// sctp, dccp), which the image's firewall opens by port; any other is
// refused at its own field.
func TestFirewallPortProtocols(t *testing.T) {
	ts := newTestServer(t, nil)
	b := composeBody()
	b["customizations"].(map[string]any)["firewall"] = map[string]any{"ports": []any{"8080:tcp", "5000:sctp", "53:udp", "33:dccp"}}
	r := ts.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))

	b = composeBody()
	b["customizations"].(map[string]any)["firewall"] = map[string]any{"ports": []any{"8080:tcp", "5000:icmp", "53:udp", "33:gre"}}
	r = ts.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.Equal(t, []string{"customizations.firewall.ports[1]", "customizations.firewall.ports[3]"}, itemFields(t, r), string(r.body))
}
