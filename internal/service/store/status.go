package store

import "slices"

// Compose statuses, derived from a compose's jobs by ComposeStatus.
const (
	ComposePending   = "pending"
	ComposeBuilding  = "building"
	ComposeUploading = "uploading"
	ComposeSuccess   = "success"
	ComposeFailure   = "failure"
)

// ComposeStatuses returns every status a compose can have, from the
// first a compose has to the ones it ends in.
func ComposeStatuses() []string {
	return []string{ComposePending, ComposeBuilding, ComposeUploading, ComposeSuccess, ComposeFailure}
}

// ComposeStatusRule is one line of the table a compose's status is
// derived from: the compose has Status when one of its jobs (one of the
// last kind, if OfLastKind) is in one of States.
type ComposeStatusRule struct {
	Status     string
	States     []string
	OfLastKind bool
}

// composeStatusRules are tried in order; the first that matches decides,
// and a compose that matches none is ComposePending.
var composeStatusRules = []ComposeStatusRule{
	{Status: ComposeFailure, States: []string{JobFailure, JobCanceled}},
	{Status: ComposeSuccess, States: []string{JobSuccess}, OfLastKind: true},
	{Status: ComposeUploading, States: []string{JobRunning}, OfLastKind: true},
	{Status: ComposeBuilding, States: []string{JobRunning, JobSuccess}},
}

// ComposeStatusRules returns the table ComposeStatus applies, in order,
// for backends that must filter or count by status in their query
// language: they translate this table and nothing else.
func ComposeStatusRules() []ComposeStatusRule {
	out := make([]ComposeStatusRule, len(composeStatusRules))
	for i, r := range composeStatusRules {
		r.States = slices.Clone(r.States)
		out[i] = r
	}
	return out
}

// ComposeStatus is the status of a compose whose jobs are jobs; lastKind
// is the type of its last job (the upload): failure when a job failed or
// was canceled, success when the last job succeeded, uploading while it
// runs, building once any job ran, else pending. It is the one place the
// status is decided: the API shows it, and ListComposes' status filter
// and ComposeStatusCounts derive theirs from the same table.
func ComposeStatus(jobs []Job, lastKind string) string {
	for _, r := range composeStatusRules {
		for _, j := range jobs {
			if (!r.OfLastKind || j.Type == lastKind) && slices.Contains(r.States, j.State) {
				return r.Status
			}
		}
	}
	return ComposePending
}

// ComposeCancelled tells whether a compose whose jobs are jobs was
// cancelled: its status is failure because its owner cancelled it (a job
// was canceled) and not because a job failed. Image-builder has no such
// status, so the API keeps failure and says cancelled beside it;
// ListComposes' Cancelled filter applies the same test.
func ComposeCancelled(jobs []Job) bool {
	cancelled := false
	for _, j := range jobs {
		switch j.State {
		case JobFailure:
			return false
		case JobCanceled:
			cancelled = true
		}
	}
	return cancelled
}
