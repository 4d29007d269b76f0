package store

import (
	"context"
	"fmt"
	"time"
)

// This file is the queue's policy: what becomes of a job when its lease
// ends, by a finish, by an expiry or by its worker token's revocation.
// It is decided here once; the backends only execute the outcome with
// their SQL.

// HeldLease is what the policy needs to know of a running job whose
// lease ends.
type HeldLease struct {
	JobID  string
	Worker string
	// Attempts counts the job's leases so far, this one included.
	Attempts    int
	MaxAttempts int
	// CancelRequested: the job's compose was canceled while it ran.
	CancelRequested bool
}

// AttemptsAllowed is how many times the queue runs j at most: its
// MaxAttempts, or DefaultMaxAttempts when that is 0 (or less).
func AttemptsAllowed(j Job) int {
	if j.MaxAttempts <= 0 {
		return DefaultMaxAttempts
	}
	return j.MaxAttempts
}

// LeaseOutcome is what becomes of a job whose lease ends.
type LeaseOutcome int

// The outcomes of an ended lease.
const (
	// LeaseSucceed: the job ends with success.
	LeaseSucceed LeaseOutcome = iota + 1
	// LeaseRequeue: the job goes back to the queue, pending.
	LeaseRequeue
	// LeaseFail: the job fails, and so do the jobs that wait on it.
	LeaseFail
	// LeaseCancel: the job ends canceled, and so do the jobs that wait on
	// it.
	LeaseCancel
)

// FinishOutcome decides a job its worker finished, with failure or
// (nil) success: a canceled compose's job ends canceled whatever its
// worker says; a failure marked Retry is run again while attempts remain.
func FinishOutcome(h HeldLease, failure *JobError) LeaseOutcome {
	switch {
	case h.CancelRequested:
		return LeaseCancel
	case failure == nil:
		return LeaseSucceed
	case failure.Retry && h.Attempts < h.MaxAttempts:
		return LeaseRequeue
	default:
		return LeaseFail
	}
}

// ExpiredOutcome decides a job whose worker stopped heartbeating: a
// canceled compose's job ends canceled, else the job is requeued while
// attempts remain and given up (failed) once they are used.
func ExpiredOutcome(h HeldLease) LeaseOutcome {
	switch {
	case h.CancelRequested:
		return LeaseCancel
	case h.Attempts < h.MaxAttempts:
		return LeaseRequeue
	default:
		return LeaseFail
	}
}

// RevokedOutcome decides a job whose worker token was revoked: the job
// did not fail, its worker is no longer trusted, so it is requeued (and
// that attempt does not count) unless its compose was canceled.
func RevokedOutcome(h HeldLease) LeaseOutcome {
	if h.CancelRequested {
		return LeaseCancel
	}
	return LeaseRequeue
}

// ExpiredLeaseOps are the steps of Rescue, which a backend executes
// inside one write transaction.
type ExpiredLeaseOps interface {
	// ExpiredLeases returns the running jobs whose lease expired before
	// now, the earliest expiry first and by job ID among equal ones: the
	// same order on every backend, and the order in which a backend that
	// locks them takes its locks.
	ExpiredLeases(ctx context.Context, now time.Time) ([]HeldLease, error)
	// RequeueJob makes a running job pending again, recording reason.
	RequeueJob(ctx context.Context, jobID, reason string) error
	// FailJob fails a job and every job that waits on it.
	FailJob(ctx context.Context, jobID string, now time.Time, reason, details string) error
	// CancelJob ends a job canceled, with every job that waits on it.
	CancelJob(ctx context.Context, jobID string, now time.Time) error
}

// ExpiredLeaseTx is a backend that runs the steps of Rescue in one
// write transaction: fn gets the steps bound to it, and the transaction
// commits when fn returns nil. The conformance suite checks the steps
// through it.
type ExpiredLeaseTx interface {
	ExpiredLeaseTx(ctx context.Context, fn func(ExpiredLeaseOps) error) error
}

// RescueExpired is Queue.Rescue over a backend's steps, run in one
// transaction: it requeues, fails or cancels each job whose lease expired
// as ExpiredOutcome says, and counts the requeued and failed jobs. On an
// error it returns zero counts: the transaction rolls back and nothing
// was rescued. A backend that runs its transaction again (after a
// deadlock) calls it again and takes that call's counts.
func RescueExpired(ctx context.Context, ops ExpiredLeaseOps, now time.Time) (requeued, failed int, err error) {
	held, err := ops.ExpiredLeases(ctx, now)
	if err != nil {
		return 0, 0, err
	}
	for _, h := range held {
		switch ExpiredOutcome(h) {
		case LeaseCancel:
			err = ops.CancelJob(ctx, h.JobID, now)
		case LeaseRequeue:
			requeued++
			err = ops.RequeueJob(ctx, h.JobID, RequeuedReason(h.Worker))
		default:
			failed++
			reason, details := GivenUp(h.Attempts, h.Worker)
			err = ops.FailJob(ctx, h.JobID, now, reason, details)
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return requeued, failed, nil
}

// RequeuedReason is what a job requeued by Rescue records of its dead
// worker.
func RequeuedReason(worker string) string {
	return fmt.Sprintf("worker %q stopped heartbeating; requeued", worker)
}

// RevokedReason is what a job requeued because its worker's token was
// revoked records.
func RevokedReason(worker string) string {
	return fmt.Sprintf("the worker token of worker %q was revoked; requeued", worker)
}

// GivenUp is the error of a job whose workers stopped heartbeating on
// every one of its attempts.
func GivenUp(attempts int, worker string) (reason, details string) {
	return fmt.Sprintf("the worker stopped heartbeating, %d times: the job was given up", attempts), "last worker: " + worker
}
