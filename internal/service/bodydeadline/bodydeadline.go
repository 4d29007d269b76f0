// Package bodydeadline bounds how long a client may take to send a
// request's body. The server's ReadTimeout would bound the whole request,
// which would also cut the responses that are meant to last (a followed
// build log, a large download), so the bound is set per request, on the
// body alone, and lifted once the body has arrived.
package bodydeadline

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// Set bounds how long the client may take to send r's body: the
// connection's read deadline is set d from now, and cleared once the body
// has been read to its end. When sliding, each piece that arrives moves
// the deadline d further, so a slow upload that keeps moving goes on
// while a stalled one is cut off. Requests without a body, and
// connections whose deadline cannot be set, are left alone.
func Set(w http.ResponseWriter, r *http.Request, d time.Duration, sliding bool) {
	if d <= 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return
	}
	r.Body = &body{ReadCloser: r.Body, rc: rc, d: d, sliding: sliding}
}

// Exceeded tells whether err is a body read that ran past its deadline.
func Exceeded(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

type body struct {
	io.ReadCloser
	rc      *http.ResponseController
	d       time.Duration
	sliding bool
	done    bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		if !b.done {
			// The whole body is here: the response may take as long as
			// it needs.
			b.done = true
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case n > 0 && b.sliding && !b.done:
		_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	}
	return n, err
}
