package main

import (
	"errors"
	"strings"

	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
)

// The errors view: what a user reads when an operation fails. Errors are
// typed values up to here; the text that names this configuration's
// directory and options (the commands to run next) is built here.

// errorText renders err for people. dir is the configuration directory as
// the user named it, vars says the run had -var or -var-file options: the
// commands it suggests need both.
func errorText(err error, dir string, vars bool) string {
	var pe *executor.PausedError
	if errors.As(err, &pe) {
		return pausedText(pe, dir, vars)
	}
	var ue *executor.UnreachableError
	if errors.As(err, &ue) {
		return err.Error() + ".\nTo carry it out on the reachable nodes anyway, run again with -allow-unreachable; or wait until every node answers."
	}
	return err.Error()
}

// pausedText says what a paused apply left and the commands that roll it
// back or resume it.
func pausedText(e *executor.PausedError, dir string, vars bool) string {
	arg := ""
	if dir != "" && dir != "." {
		arg = " " + shellQuote(dir)
	}
	s := e.Cause.Error() + "\n" +
		"Apply paused (failure_action = \"pause\"): nothing was rolled back. The containers this apply created stay (the failed one too);\n" +
		"the old containers they replace are kept aside, renamed NAME" + planner.AsideName("", e.ApplyID) + ".\n" +
		"  To roll back: berth apply" + arg + "\n" +
		"    restores the old containers first, then applies the configuration again: put it back as it was (or fix it) before.\n" +
		"  To resume:    berth apply -recover=forward" + arg + "\n" +
		"    keeps the new containers (the failed one too), removes the old ones and carries out the rest of the plan.\n" +
		"  berth plan" + arg + " (or berth plan -recover=forward" + arg + ") shows what each will do."
	if vars {
		s += "\n  Give these commands the same -var and -var-file options as this one."
	}
	return s
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./-+,:@%=", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shownError is an error with the text the errors view made of it.
type shownError struct {
	err  error
	text string
}

func (e *shownError) Error() string { return e.text }
func (e *shownError) Unwrap() error { return e.err }

// opError maps an operation's error to what Run prints and the exit code:
// planning errors were shown as diagnostics already (exit 1); an apply cut
// short by Ctrl-C or SIGTERM exits 130; text renders the rest.
func opError(o *executor.Outcome, err error, text func(error) string) error {
	if err == nil {
		return nil
	}
	var de *executor.DiagnosticsError
	if errors.As(err, &de) {
		return exitCode(1, nil)
	}
	shown := &shownError{err: err, text: text(err)}
	if o != nil && o.Interrupted {
		return exitCode(exitInterrupted, shown)
	}
	return shown
}
