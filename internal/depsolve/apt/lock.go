package apt

import (
	"context"
	"fmt"
	"os"
	"syscall"
)

// fileLock is an flock(2) lock on a file beside a metadata directory. The
// metadata is written under the exclusive lock and read under the shared
// one, so processes sharing a cache never see a half-written tree.
type fileLock struct {
	f *os.File
}

// lockFile opens path and locks it, exclusively or shared. It gives up
// when ctx ends; the lock is then released as soon as it is granted.
func lockFile(ctx context.Context, path string, exclusive bool) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening metadata lock: %w", err)
	}
	l := &fileLock{f: f}
	if err := l.lock(ctx, exclusive); err != nil {
		l.release()
		return nil, err
	}
	return l, nil
}

func (l *fileLock) lock(ctx context.Context, exclusive bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	// Without waiting first: the common case.
	if err := syscall.Flock(int(l.f.Fd()), how|syscall.LOCK_NB); err == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- flockRetry(int(l.f.Fd()), how) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("locking %s: %w", l.f.Name(), err)
		}
		return nil
	case <-ctx.Done():
		// The goroutine still owns the descriptor until flock returns.
		f := l.f
		go func() {
			<-done
			f.Close()
		}()
		l.f = nil
		return fmt.Errorf("waiting for the metadata lock %s: %w", f.Name(), ctx.Err())
	}
}

func flockRetry(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// downgrade turns the exclusive lock into a shared one.
func (l *fileLock) downgrade(ctx context.Context) error {
	return l.lock(ctx, false)
}

// release unlocks and closes the file.
func (l *fileLock) release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Close() // closing drops the flock
	l.f = nil
}
