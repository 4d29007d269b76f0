package store

import "testing"

func TestComposeStatus(t *testing.T) {
	job := func(typ, state string) Job { return Job{Type: typ, State: state} }
	for _, tc := range []struct {
		name string
		jobs []Job
		want string
	}{
		{"no jobs", nil, ComposePending},
		{"all pending", []Job{job("depsolve", JobPending), job("build", JobPending), job("upload", JobPending)}, ComposePending},
		{"depsolve runs", []Job{job("depsolve", JobRunning), job("build", JobPending), job("upload", JobPending)}, ComposeBuilding},
		{"depsolved", []Job{job("depsolve", JobSuccess), job("build", JobPending), job("upload", JobPending)}, ComposeBuilding},
		{"build runs", []Job{job("depsolve", JobSuccess), job("build", JobRunning), job("upload", JobPending)}, ComposeBuilding},
		{"upload runs", []Job{job("depsolve", JobSuccess), job("build", JobSuccess), job("upload", JobRunning)}, ComposeUploading},
		{"uploaded", []Job{job("depsolve", JobSuccess), job("build", JobSuccess), job("upload", JobSuccess)}, ComposeSuccess},
		{"build failed", []Job{job("depsolve", JobSuccess), job("build", JobFailure), job("upload", JobFailure)}, ComposeFailure},
		{"canceled", []Job{job("depsolve", JobSuccess), job("build", JobCanceled), job("upload", JobCanceled)}, ComposeFailure},
		{"a failure outranks a success", []Job{job("depsolve", JobFailure), job("upload", JobSuccess)}, ComposeFailure},
		{"only the last kind makes success", []Job{job("depsolve", JobSuccess), job("build", JobSuccess)}, ComposeBuilding},
	} {
		if got := ComposeStatus(tc.jobs, "upload"); got != tc.want {
			t.Errorf("%s: ComposeStatus = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The table a backend translates is a copy: changing it changes nothing.
func TestComposeStatusRulesAreACopy(t *testing.T) {
	rules := ComposeStatusRules()
	rules[0].Status = "changed"
	rules[0].States[0] = "changed"
	if got := ComposeStatusRules(); got[0].Status != ComposeFailure || got[0].States[0] != JobFailure {
		t.Errorf("ComposeStatusRules()[0] = %+v after a caller changed its copy", got[0])
	}
}

// Every status the rules give is one ComposeStatuses lists.
func TestComposeStatusesListsEveryRule(t *testing.T) {
	listed := map[string]bool{}
	for _, st := range ComposeStatuses() {
		listed[st] = true
	}
	if !listed[ComposePending] {
		t.Errorf("ComposeStatuses() lacks %q, the status of a compose no rule matches", ComposePending)
	}
	for _, r := range ComposeStatusRules() {
		if !listed[r.Status] {
			t.Errorf("ComposeStatuses() lacks %q", r.Status)
		}
	}
}

func TestComposeCancelled(t *testing.T) {
	job := func(typ, state string) Job { return Job{Type: typ, State: state} }
	for _, tc := range []struct {
		name string
		jobs []Job
		want bool
	}{
		{"no jobs", nil, false},
		{"running", []Job{job("depsolve", JobSuccess), job("build", JobRunning), job("upload", JobPending)}, false},
		{"succeeded", []Job{job("depsolve", JobSuccess), job("build", JobSuccess), job("upload", JobSuccess)}, false},
		{"cancelled while pending", []Job{job("depsolve", JobCanceled), job("build", JobCanceled), job("upload", JobCanceled)}, true},
		{"cancelled while building", []Job{job("depsolve", JobSuccess), job("build", JobCanceled), job("upload", JobCanceled)}, true},
		{"failed", []Job{job("depsolve", JobSuccess), job("build", JobFailure), job("upload", JobFailure)}, false},
		{"a failure outranks a cancel", []Job{job("depsolve", JobFailure), job("build", JobCanceled)}, false},
	} {
		if got := ComposeCancelled(tc.jobs); got != tc.want {
			t.Errorf("%s: ComposeCancelled = %v, want %v", tc.name, got, tc.want)
		}
	}
}
