package store

import (
	"context"
	"errors"
	"time"
)

// Incident impacts, from the least to the most severe.
const (
	ImpactMinor    = "minor"
	ImpactMajor    = "major"
	ImpactCritical = "critical"
)

// IncidentImpacts lists the impacts an incident may have.
func IncidentImpacts() []string { return []string{ImpactMinor, ImpactMajor, ImpactCritical} }

// Incident statuses: an open incident is in one of the first three.
const (
	IncidentInvestigating = "investigating"
	IncidentIdentified    = "identified"
	IncidentMonitoring    = "monitoring"
	IncidentResolved      = "resolved"
)

// IncidentOpenStatuses lists the statuses an update may give an incident
// that stays open.
func IncidentOpenStatuses() []string {
	return []string{IncidentInvestigating, IncidentIdentified, IncidentMonitoring}
}

// ErrIncidentResolved: the incident was resolved already; it takes no
// more updates.
var ErrIncidentResolved = errors.New("the incident is resolved already")

// Incident is an outage or degradation the operators announce on the
// public status page. It holds no tenant data.
type Incident struct {
	ID    string
	Title string
	// Impact is minor, major or critical.
	Impact string
	// Components are the status page's components it affects.
	Components []string
	// Status is the latest update's.
	Status     string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ResolvedAt *time.Time
	// Updates are the incident's updates, oldest first (the first one is
	// written when it is opened).
	Updates []IncidentUpdate
}

// IncidentUpdate is one message about an incident.
type IncidentUpdate struct {
	ID         string
	IncidentID string
	Status     string
	Body       string
	CreatedAt  time.Time
}

// Incidents stores incidents and their updates.
type Incidents interface {
	// CreateIncident stores an incident and its first update in one
	// transaction.
	CreateIncident(ctx context.Context, inc Incident, first IncidentUpdate) error
	// AddIncidentUpdate adds an update, which sets the incident's status
	// and updated time (and its resolved time when the status is
	// resolved): ErrNotFound for no such incident, ErrIncidentResolved
	// for one resolved already.
	AddIncidentUpdate(ctx context.Context, u IncidentUpdate) error
	// GetIncident returns an incident with its updates.
	GetIncident(ctx context.Context, id string) (Incident, error)
	// ListIncidents returns the open incidents and those resolved at or
	// after since, each with its updates, newest first.
	ListIncidents(ctx context.Context, since time.Time) ([]Incident, error)
}

// UptimeSample is one probe of a component: whether it was operational.
type UptimeSample struct {
	Component string
	At        time.Time
	OK        bool
}

// UptimeDay counts a component's probes on one UTC day.
type UptimeDay struct {
	Component string
	// Day is the day's start, midnight UTC.
	Day       time.Time
	OK, Total int64
}

// Day is the UTC day t falls on, as its midnight.
func Day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// Uptime counts the status prober's samples per component and UTC day.
// Every replica adds its own samples to the same rows.
type Uptime interface {
	// RecordUptime adds samples to their components' days.
	RecordUptime(ctx context.Context, samples []UptimeSample) error
	// UptimeDays returns the days at or after since, by component, then
	// day.
	UptimeDays(ctx context.Context, since time.Time) ([]UptimeDay, error)
	// PruneUptime deletes the days before before and says how many.
	PruneUptime(ctx context.Context, before time.Time) (int, error)
}

// UploadOutcome counts the uploads to one upload type that ran and ended
// in a time window: what the status page judges an upload target by,
// without calling the cloud behind it.
type UploadOutcome struct {
	// Type is the upload type (aws, gcp, local, ...).
	Type             string
	Success, Failure int
}

// Uploads reads how recent uploads ended.
type Uploads interface {
	// UploadOutcomes counts, by upload type, the upload jobs that a
	// worker ran (canceled ones and those whose build failed are left
	// out) and that ended at or after since. Jobs queued more than a day
	// before since are not looked at.
	UploadOutcomes(ctx context.Context, since time.Time) ([]UploadOutcome, error)
}
