package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/executor"
)

// The pause message says what is left and gives the exact commands that
// roll back or resume, for the configuration the user named (quoted for
// the shell when needed).
func TestPausedErrorSaysHowToRollBackOrResume(t *testing.T) {
	e := &executor.PausedError{Cause: errors.New(`service "web" replica 2 on node node2 (container demo-web-2): replace: health: not healthy`),
		ApplyID: "ab12cd34"}
	want := `service "web" replica 2 on node node2 (container demo-web-2): replace: health: not healthy
Apply paused (failure_action = "pause"): nothing was rolled back. The containers this apply created stay (the failed one too);
the old containers they replace are kept aside, renamed NAME_berth_old_ab12cd34.
  To roll back: berth apply './my app'
    restores the old containers first, then applies the configuration again: put it back as it was (or fix it) before.
  To resume:    berth apply -recover=forward './my app'
    keeps the new containers (the failed one too), removes the old ones and carries out the rest of the plan.
  berth plan './my app' (or berth plan -recover=forward './my app') shows what each will do.
  Give these commands the same -var and -var-file options as this one.`
	if got := errorText(e, "./my app", true); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if got := errorText(e, ".", false); !strings.Contains(got, "  To roll back: berth apply\n") || !strings.Contains(got, "  To resume:    berth apply -recover=forward\n") ||
		strings.Contains(got, "-var") {
		t.Errorf("for the current directory:\n%s", got)
	}
	for in, out := range map[string]string{"demo": "demo", "/srv/app-1/conf.d": "/srv/app-1/conf.d", "it's": `'it'\''s'`, "": "''"} {
		if got := shellQuote(in); got != out {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, out)
		}
	}
}
