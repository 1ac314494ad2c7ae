//go:build !unix

package testcluster

import "time"

func lockShared(string, time.Duration) error { return nil }

func yield(time.Duration) error { return nil }

func relock(bool, time.Duration) error { return nil }
