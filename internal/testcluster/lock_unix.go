//go:build unix

package testcluster

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

var lockFile struct {
	sync.Mutex
	f *os.File
}

// lockShared opens the cluster's lock file and takes a shared flock on it,
// held until the process exits.
func lockShared(path string, timeout time.Duration) error {
	lockFile.Lock()
	defer lockFile.Unlock()
	if lockFile.f != nil {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open cluster lock: %w", err)
	}
	lockFile.f = f
	return flock(f, syscall.LOCK_SH, timeout)
}

// relock converts the lock to exclusive or back to shared.
func relock(exclusive bool, timeout time.Duration) error {
	lockFile.Lock()
	defer lockFile.Unlock()
	if lockFile.f == nil {
		return errors.New("cluster lock is not held (Require was not called)")
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	return flock(lockFile.f, how, timeout)
}

func flock(f *os.File, how int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lock %s: still held by another test process after %s", f.Name(), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
