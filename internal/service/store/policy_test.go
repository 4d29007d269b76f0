package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestFinishOutcome(t *testing.T) {
	transient := &JobError{Reason: "mirror timed out", Retry: true}
	bad := &JobError{Reason: "no such package"}
	for _, tc := range []struct {
		name    string
		held    HeldLease
		failure *JobError
		want    LeaseOutcome
	}{
		{"success", HeldLease{Attempts: 1, MaxAttempts: 3}, nil, LeaseSucceed},
		{"success of a canceled compose's job", HeldLease{Attempts: 1, MaxAttempts: 3, CancelRequested: true}, nil, LeaseCancel},
		{"transient failure, attempts left", HeldLease{Attempts: 2, MaxAttempts: 3}, transient, LeaseRequeue},
		{"transient failure, attempts used", HeldLease{Attempts: 3, MaxAttempts: 3}, transient, LeaseFail},
		{"bad input", HeldLease{Attempts: 1, MaxAttempts: 3}, bad, LeaseFail},
		{"failure of a canceled compose's job", HeldLease{Attempts: 1, MaxAttempts: 3, CancelRequested: true}, transient, LeaseCancel},
	} {
		if got := FinishOutcome(tc.held, tc.failure); got != tc.want {
			t.Errorf("%s: FinishOutcome = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestExpiredAndRevokedOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name             string
		held             HeldLease
		expired, revoked LeaseOutcome
	}{
		{"attempts left", HeldLease{Attempts: 1, MaxAttempts: 2}, LeaseRequeue, LeaseRequeue},
		{"attempts used", HeldLease{Attempts: 2, MaxAttempts: 2}, LeaseFail, LeaseRequeue},
		{"canceled", HeldLease{Attempts: 1, MaxAttempts: 2, CancelRequested: true}, LeaseCancel, LeaseCancel},
	} {
		if got := ExpiredOutcome(tc.held); got != tc.expired {
			t.Errorf("%s: ExpiredOutcome = %v, want %v", tc.name, got, tc.expired)
		}
		if got := RevokedOutcome(tc.held); got != tc.revoked {
			t.Errorf("%s: RevokedOutcome = %v, want %v", tc.name, got, tc.revoked)
		}
	}
}

// fakeLeaseOps records the steps RescueExpired takes.
type fakeLeaseOps struct {
	held   []HeldLease
	failOn string // the job whose step fails
	steps  []string
}

func (f *fakeLeaseOps) ExpiredLeases(context.Context, time.Time) ([]HeldLease, error) {
	return f.held, nil
}

func (f *fakeLeaseOps) step(s, id string) error {
	f.steps = append(f.steps, s+" "+id)
	if id == f.failOn {
		return errors.New("the database went away")
	}
	return nil
}

func (f *fakeLeaseOps) RequeueJob(_ context.Context, id, _ string) error {
	return f.step("requeue", id)
}

func (f *fakeLeaseOps) FailJob(_ context.Context, id string, _ time.Time, _, _ string) error {
	return f.step("fail", id)
}

func (f *fakeLeaseOps) CancelJob(_ context.Context, id string, _ time.Time) error {
	return f.step("cancel", id)
}

func TestRescueExpired(t *testing.T) {
	held := []HeldLease{
		{JobID: "a", Attempts: 1, MaxAttempts: 3},
		{JobID: "b", Attempts: 3, MaxAttempts: 3},
		{JobID: "c", Attempts: 1, MaxAttempts: 3, CancelRequested: true},
		{JobID: "d", Attempts: 2, MaxAttempts: 3},
	}
	ops := &fakeLeaseOps{held: held}
	requeued, failed, err := RescueExpired(context.Background(), ops, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if requeued != 2 || failed != 1 {
		t.Errorf("RescueExpired = %d requeued, %d failed; want 2, 1 (a canceled job counts as neither)", requeued, failed)
	}
	if want := []string{"requeue a", "fail b", "cancel c", "requeue d"}; !reflect.DeepEqual(ops.steps, want) {
		t.Errorf("steps = %q, want %q, in the order the leases were listed", ops.steps, want)
	}

	ops = &fakeLeaseOps{held: held, failOn: "d"}
	requeued, failed, err = RescueExpired(context.Background(), ops, time.Now())
	if err == nil || requeued != 0 || failed != 0 {
		t.Errorf("RescueExpired with a failing step = %d, %d, %v; want 0, 0 and the error: its transaction rolls back", requeued, failed, err)
	}
}

func TestAttemptsAllowed(t *testing.T) {
	for _, tc := range []struct{ max, want int }{{0, DefaultMaxAttempts}, {-1, DefaultMaxAttempts}, {1, 1}, {5, 5}} {
		if got := AttemptsAllowed(Job{MaxAttempts: tc.max}); got != tc.want {
			t.Errorf("AttemptsAllowed(MaxAttempts %d) = %d, want %d", tc.max, got, tc.want)
		}
	}
}
