//go:build unix

package testcluster

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The waiting room, with this process as a reader and file handles of the
// test's own as another process: a reader steps out of the cluster lock
// for a waiting writer only when yield is called, and is back in, shared,
// once the writer's fault is over; without a writer, yield keeps the lock.
func TestLockWaitingRoom(t *testing.T) {
	lockFile.Lock()
	saved := lockFile.f
	savedRoom := lockFile.room
	lockFile.f, lockFile.room = nil, nil
	lockFile.Unlock()
	t.Cleanup(func() {
		lockFile.Lock()
		lockFile.f.Close()
		lockFile.room.Close()
		lockFile.f, lockFile.room = saved, savedRoom
		lockFile.Unlock()
	})
	path := filepath.Join(t.TempDir(), "lock")
	if err := lockShared(path, time.Second); err != nil {
		t.Fatal(err)
	}
	other := func(name string) *os.File {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	lock, room := other(path), other(path+".wait")
	try := func(f *os.File, how int) bool { return syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB) == nil }

	if err := yield(time.Second); err != nil {
		t.Fatal(err)
	}
	if try(lock, syscall.LOCK_EX) {
		t.Fatal("with no writer waiting, yield let the cluster lock go")
	}

	// A writer waits in the room: yield steps out, then waits for the
	// writer's exclusive lock to end.
	if !try(room, syscall.LOCK_EX) {
		t.Fatal("the room is taken")
	}
	done := make(chan error, 1)
	go func() { done <- yield(10 * time.Second) }()
	deadline := time.Now().Add(5 * time.Second)
	for !try(lock, syscall.LOCK_EX) {
		if time.Now().After(deadline) {
			t.Fatal("yield kept the cluster lock while a writer waited")
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Flock(int(room.Fd()), syscall.LOCK_UN) // the writer has the lock: it leaves the room
	select {
	case err := <-done:
		t.Fatalf("yield returned (%v) while the writer held the cluster lock", err)
	case <-time.After(300 * time.Millisecond):
	}
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) // the fault is over
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if try(lock, syscall.LOCK_EX) {
		t.Fatal("after yield the reader does not hold the cluster lock")
	}

	// This process as the writer: it waits in the room while another
	// reader holds the lock, and has it once that reader steps out.
	if !try(lock, syscall.LOCK_SH) {
		t.Fatal("the other reader cannot share the lock")
	}
	if err := relock(true, 0); err == nil {
		t.Fatal("the exclusive lock was had while another reader held it")
	}
	got := make(chan error, 1)
	go func() { got <- relock(true, 10*time.Second) }()
	for try(room, syscall.LOCK_SH) { // not yet in the room
		syscall.Flock(int(room.Fd()), syscall.LOCK_UN)
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) // the other reader yields
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if try(lock, syscall.LOCK_SH) || !try(room, syscall.LOCK_SH) {
		t.Fatal("relock: want the cluster lock exclusive and the room empty")
	}
	if err := relock(false, time.Second); err != nil {
		t.Fatal(err)
	}
}
