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

// Two flocks order the test processes that use the cluster. The cluster lock
// (DIR/lock) is held shared by every test process while it uses the cluster,
// and exclusively by one while its test has a fault in place. A process that
// must wait for the exclusive lock first takes the waiting room
// (DIR/lock.wait) exclusively; the others, at the start of their next test
// (Require), find the room taken and step out of the cluster lock until the
// fault's test has let it go. A fault thus waits for the tests running now,
// not for whole test processes to end.
var lockFile struct {
	sync.Mutex
	f    *os.File // DIR/lock
	room *os.File // DIR/lock.wait
}

// lockShared opens the cluster's lock files and takes the cluster lock
// shared, once no process waits for it, until the process exits.
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
	room, err := os.OpenFile(path+".wait", os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		f.Close()
		return fmt.Errorf("open cluster lock: %w", err)
	}
	lockFile.f, lockFile.room = f, room
	return enter(timeout)
}

// enter takes the cluster lock shared once the waiting room is empty.
func enter(timeout time.Duration) error {
	if err := flock(lockFile.room, syscall.LOCK_SH, timeout); err != nil {
		return err
	}
	syscall.Flock(int(lockFile.room.Fd()), syscall.LOCK_UN)
	return flock(lockFile.f, syscall.LOCK_SH, timeout)
}

// yield steps out of the shared cluster lock while another process waits
// in the room, and back in once the room is empty and the lock is free of
// faults. It is for the start of a test, when this process has nothing in
// flight on the cluster.
func yield(timeout time.Duration) error {
	lockFile.Lock()
	defer lockFile.Unlock()
	if lockFile.f == nil {
		return nil
	}
	err := syscall.Flock(int(lockFile.room.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(lockFile.room.Fd()), syscall.LOCK_UN)
		return nil
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("lock %s: %w", lockFile.room.Name(), err)
	}
	if err := syscall.Flock(int(lockFile.f.Fd()), syscall.LOCK_UN); err != nil {
		return fmt.Errorf("unlock %s: %w", lockFile.f.Name(), err)
	}
	return enter(timeout)
}

// relock converts the cluster lock to exclusive or back to shared. With a
// timeout of 0 it tries the exclusive lock once; otherwise it waits in the
// room for it.
func relock(exclusive bool, timeout time.Duration) error {
	lockFile.Lock()
	defer lockFile.Unlock()
	if lockFile.f == nil {
		return errors.New("cluster lock is not held (Require was not called)")
	}
	if !exclusive {
		return flock(lockFile.f, syscall.LOCK_SH, timeout)
	}
	if timeout == 0 {
		return flock(lockFile.f, syscall.LOCK_EX, 0)
	}
	if err := flock(lockFile.room, syscall.LOCK_EX, timeout); err != nil {
		return err
	}
	defer syscall.Flock(int(lockFile.room.Fd()), syscall.LOCK_UN)
	return flock(lockFile.f, syscall.LOCK_EX, timeout)
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
