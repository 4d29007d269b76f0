package browser

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An aarch64 image on a service whose only worker builds x86_64 says on
// its page and in the list that it waits for a worker that builds
// aarch64, with the command that starts one.
func TestImageWaitsForAWorkerOfItsArch(t *testing.T) {
	e := SharedEnv(t)
	token := e.Server.Token(t, "armco", "browser-arm") // an org of its own: its image never ends
	var res struct {
		ID string `json:"id"`
	}
	code := e.Server.API(t, token, "POST", "/compose", map[string]any{
		"distribution": "debian-12", "image_name": "arm-rootfs",
		"image_requests": []map[string]any{{"architecture": "aarch64", "image_type": "tar", "upload_request": map[string]any{"type": "local"}}},
		"customizations": map[string]any{"hostname": "arm01"},
	}, &res)
	require.Equal(t, http.StatusCreated, code)
	t.Cleanup(func() { e.Server.API(t, token, "POST", "/composes/"+res.ID+"/cancel", nil, nil) })

	b := NewBrowser(t, e.Server)
	b.SignIn(token)
	WaitFor[bool](b, "the waiting note in the list", 30*time.Second, `(() => { const n = document.querySelector('.waiting-note'); return !!n && n.textContent === 'No aarch64 worker connected'; })()`)
	assert.Equal(t, "aarch64", Eval[string](b, `document.querySelector('td[data-label=Architecture]').textContent`))
	b.Visit("#/composes/"+res.ID, `!!document.querySelector('.waiting-reason')`)
	assert.Equal(t, "Waiting for a worker that builds aarch64", Eval[string](b, `document.querySelector('.waiting .alert-title').textContent`))
	assert.Equal(t, "no connected worker builds aarch64; start one with kiln worker --arch aarch64", Eval[string](b, `document.querySelector('.waiting-reason').textContent`))
	assert.Equal(t, "kiln worker --arch aarch64", Eval[string](b, `document.querySelector('.waiting-reason code').textContent`))
	assert.Equal(t, "status", Eval[string](b, `document.querySelector('.waiting').getAttribute('role')`))
}
