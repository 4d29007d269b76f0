package status

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/feeds"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/ui"
)

// Days is how many days of uptime the page shows and the store keeps.
const Days = 90

//go:embed assets
var assets embed.FS

var page = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"date":    func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") },
	"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"percent": formatPercent,
	"bar":     barClass,
	"title":   Title,
}).ParseFS(assets, "assets/status.html"))

// Report is /status.json, and what /status shows.
type Report struct {
	// Overall is the service's state (see Overall).
	Overall    string            `json:"overall"`
	UpdatedAt  time.Time         `json:"updated_at"`
	Components []ReportComponent `json:"components"`
	// Incidents are the open ones and those resolved in the last 90
	// days, newest first.
	Incidents []ReportIncident `json:"incidents"`
}

// ReportComponent is a component's state and its uptime.
type ReportComponent struct {
	Component
	// UptimePercent is the share of operational samples over the days
	// that have samples; nil when none has.
	UptimePercent *float64 `json:"uptime_percent"`
	// Uptime has one entry per UTC day, the oldest first, today last.
	Uptime []UptimeDay `json:"uptime"`
}

// UptimeDay is one day of a component's uptime.
type UptimeDay struct {
	Date string `json:"date"`
	// Percent of the day's samples that found the component
	// operational; nil with NoData when there were none.
	Percent *float64 `json:"percent"`
	Samples int64    `json:"samples"`
	NoData  bool     `json:"no_data,omitempty"`
}

// ReportIncident is an incident with its updates.
type ReportIncident struct {
	ID         string         `json:"id"`
	Title      string         `json:"title"`
	Impact     string         `json:"impact"`
	Status     string         `json:"status"`
	Components []string       `json:"components"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	ResolvedAt *time.Time     `json:"resolved_at"`
	Updates    []ReportUpdate `json:"updates"`
}

// IncidentOf is inc as the status page's JSON and `kiln incident list`
// write it, its updates oldest first as the store keeps them.
func IncidentOf(inc store.Incident) ReportIncident {
	ri := ReportIncident{ID: inc.ID, Title: inc.Title, Impact: inc.Impact, Status: inc.Status, Components: inc.Components,
		CreatedAt: inc.CreatedAt, UpdatedAt: inc.UpdatedAt, ResolvedAt: inc.ResolvedAt, Updates: []ReportUpdate{}}
	if ri.Components == nil {
		ri.Components = []string{}
	}
	for _, u := range inc.Updates {
		ri.Updates = append(ri.Updates, ReportUpdate{Status: u.Status, Body: u.Body, CreatedAt: u.CreatedAt})
	}
	return ri
}

// ReportUpdate is one update of an incident.
type ReportUpdate struct {
	Status    string    `json:"status"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// Report builds the report from the prober's latest check, the recorded
// uptime and the incidents.
func (p *Prober) Report(ctx context.Context) (Report, error) {
	now := p.cfg.Now().UTC()
	cs := p.Current()
	r := Report{Overall: Overall(cs), UpdatedAt: now, Components: []ReportComponent{}, Incidents: []ReportIncident{}}
	first := store.Day(now).AddDate(0, 0, -(Days - 1))
	// Without the database the page still shows the current states.
	days, dayErr := p.cfg.Store.UptimeDays(ctx, first)
	type key struct {
		c string
		d string
	}
	counted := map[key]store.UptimeDay{}
	for _, d := range days {
		counted[key{d.Component, d.Day.Format(time.DateOnly)}] = d
	}
	for _, c := range cs {
		rc := ReportComponent{Component: c}
		var ok, total int64
		for i := range Days {
			date := first.AddDate(0, 0, i).Format(time.DateOnly)
			d, found := counted[key{c.Name, date}]
			day := UptimeDay{Date: date, Samples: d.Total}
			if !found || d.Total == 0 {
				day.NoData = true
			} else {
				pc := 100 * float64(d.OK) / float64(d.Total)
				day.Percent = &pc
				ok, total = ok+d.OK, total+d.Total
			}
			rc.Uptime = append(rc.Uptime, day)
		}
		if total > 0 {
			pc := 100 * float64(ok) / float64(total)
			rc.UptimePercent = &pc
		}
		r.Components = append(r.Components, rc)
	}
	incs, err := p.cfg.Store.ListIncidents(ctx, now.AddDate(0, 0, -Days))
	if err == nil {
		err = dayErr
	}
	for _, inc := range incs {
		ri := IncidentOf(inc)
		slices.Reverse(ri.Updates) // newest first, as status pages read
		r.Incidents = append(r.Incidents, ri)
	}
	r.Overall = WithIncidents(r.Overall, incs)
	return r, err
}

// WithIncidents is the overall state once the open incidents are taken
// into account: an operator opens one for what the checks cannot see (slow
// builds, a broken mirror), and a headline saying "All systems
// operational" above it would contradict it. A critical incident makes
// the service down, a major or minor one degraded at least; resolved
// incidents change nothing.
func WithIncidents(overall string, incs []store.Incident) string {
	for _, inc := range incs {
		if inc.ResolvedAt != nil {
			continue
		}
		switch {
		case inc.Impact == store.ImpactCritical:
			overall = Down
		case overall != Down:
			overall = Degraded
		}
	}
	return overall
}

// barClass is a day's colour on the page; its text says the same.
func barClass(d UptimeDay) string {
	switch {
	case d.NoData:
		return "nodata"
	case *d.Percent >= 99.9:
		return "up"
	case *d.Percent >= 95:
		return "partial"
	}
	return "down"
}

// cachedReport is Report, built at most once per min(Interval, 5s): the
// pages are public, and a crowd reloading them during an outage must not
// become the database's load. One build runs at a time, in the
// background and bounded by the check timeout, whoever asked for it:
// waiting visitors give up when their own request ends, a visitor who
// leaves does not cancel (or spoil) the build the others wait for, and a
// failed build is logged once, not once per visitor.
func (p *Prober) cachedReport(ctx context.Context) (Report, error) {
	ttl := min(p.cfg.Interval, 5*time.Second)
	p.reportMu.Lock()
	if !p.reportAt.IsZero() && time.Since(p.reportAt) < ttl {
		defer p.reportMu.Unlock()
		return p.report, p.reportErr
	}
	b := p.building
	if b == nil {
		b = &reportBuild{done: make(chan struct{})}
		p.building = b
		go p.buildReport(b)
	}
	p.reportMu.Unlock()
	select {
	case <-b.done:
		return b.report, b.err
	case <-ctx.Done():
		return Report{}, ctx.Err() // the visitor left
	}
}

// reportBuild is one build of the report that visitors wait for.
type reportBuild struct {
	done   chan struct{}
	report Report
	err    error
}

func (p *Prober) buildReport(b *reportBuild) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
	defer cancel()
	b.report, b.err = p.Report(ctx)
	if b.err != nil {
		p.cfg.Log.Error("status: building the report", "err", b.err)
	}
	p.reportMu.Lock()
	p.report, p.reportErr, p.reportAt, p.building = b.report, b.err, time.Now(), nil
	p.reportMu.Unlock()
	close(b.done)
}

func formatPercent(p *float64) string {
	if p == nil {
		return "no data"
	}
	s := fmt.Sprintf("%.2f", *p)
	if *p < 100 && s == "100.00" {
		s = "99.99"
	}
	return s + "%"
}

// Handler serves GET /status (HTML), /status.json, /status/feed.atom and
// /status/status.css. None needs a token: they show no tenant data.
func (p *Prober) Handler() http.Handler {
	css, err := assets.ReadFile("assets/status.css")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", ui.CSP)
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/status/status.css":
			h.Set("Content-Type", "text/css; charset=utf-8")
			h.Set("Cache-Control", "public, max-age=300")
			_, _ = w.Write(css)
			return
		case "/status", "/status/", "/status.json", "/status/feed.atom":
		default:
			http.NotFound(w, r)
			return
		}
		// Without the database the page still shows the states, which
		// are this replica's own; the build logged why.
		rep, err := p.cachedReport(r.Context())
		if r.Context().Err() != nil {
			return
		}
		h.Set("Cache-Control", "public, max-age=10")
		var body bytes.Buffer
		switch r.URL.Path {
		case "/status.json":
			h.Set("Content-Type", "application/json")
			enc := json.NewEncoder(&body)
			enc.SetIndent("", "  ")
			err = enc.Encode(rep)
		case "/status/feed.atom":
			h.Set("Content-Type", "application/atom+xml; charset=utf-8")
			err = feed(&body, rep, baseURL(r))
		default:
			h.Set("Content-Type", "text/html; charset=utf-8")
			err = page.Execute(&body, pageData{Report: rep, OverallText: overallText(rep.Overall), DBError: err != nil})
		}
		if err != nil {
			p.cfg.Log.Error("status: writing the page", "path", r.URL.Path, "err", err)
			http.Error(w, "the status page could not be written", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(body.Bytes())
	})
}

type pageData struct {
	Report
	OverallText string
	DBError     bool
}

func overallText(state string) string {
	switch state {
	case Operational:
		return "All systems operational"
	case Degraded:
		return "Some systems are degraded"
	case Down:
		return "Major outage"
	}
	return "Status not known yet"
}

// baseURL is where the client reached the page, for the feed's links.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// feed writes the incidents as an Atom feed: one entry per incident,
// its content the updates, newest first.
func feed(w *bytes.Buffer, rep Report, base string) error {
	f := &feeds.Feed{
		Title:       "kiln status: incidents",
		Link:        &feeds.Link{Href: base + "/status"},
		Description: "Incidents of the kiln image-builder service",
		Author:      &feeds.Author{Name: "kiln operators"},
		Updated:     rep.UpdatedAt,
	}
	if len(rep.Incidents) > 0 {
		f.Updated = rep.Incidents[0].UpdatedAt
		for _, inc := range rep.Incidents {
			if inc.UpdatedAt.After(f.Updated) {
				f.Updated = inc.UpdatedAt
			}
		}
	}
	for _, inc := range rep.Incidents {
		var content strings.Builder
		for _, u := range inc.Updates {
			fmt.Fprintf(&content, "<p><strong>%s</strong> (%s): %s</p>", html.EscapeString(u.Status),
				u.CreatedAt.UTC().Format(time.RFC1123), html.EscapeString(u.Body))
		}
		title := inc.Title
		if inc.ResolvedAt != nil {
			title = "Resolved: " + title
		}
		f.Add(&feeds.Item{
			Title:       title,
			Link:        &feeds.Link{Href: base + "/status#incident-" + inc.ID},
			Id:          "urn:uuid:" + inc.ID,
			Created:     inc.CreatedAt,
			Updated:     inc.UpdatedAt,
			Description: html.EscapeString(fmt.Sprintf("%s impact on %s; %s", inc.Impact, strings.Join(titles(inc.Components), ", "), inc.Status)),
			Content:     content.String(),
		})
	}
	return f.WriteAtom(w)
}

func titles(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = Title(n)
	}
	return out
}
