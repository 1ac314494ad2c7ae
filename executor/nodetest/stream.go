package nodetest

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/executor"
)

// startListening creates and starts a container of Image and waits until
// it has written its "listening" line, which it returns.
func startListening(t *testing.T, n executor.Node) (string, executor.LogLine) {
	t.Helper()
	c := ctx(t)
	project := uniq("nodetest")
	name := project + "-web-1"
	id, err := n.CreateContainer(c, name, spec(project, name, 0))
	if err != nil {
		t.Fatal(err)
	}
	removeAfter(t, n, id)
	if err := n.StartContainer(c, id); err != nil {
		t.Fatal(err)
	}
	// Wait for the process to write its first line (bounded by ctx).
	for {
		var got []executor.LogLine
		if err := n.LogStream(c, id, executor.LogOptions{}, func(l executor.LogLine) { got = append(got, l) }); err != nil {
			t.Fatal(err)
		}
		for _, l := range got {
			if strings.Contains(l.Text, "listening on :8080") {
				return id, l
			}
		}
		select {
		case <-c.Done():
			t.Fatalf("no listening line in the logs: %+v", got)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func testLogStream(t *testing.T, n executor.Node) {
	needImage(t, n)
	c := ctx(t)
	before := time.Now()
	id, first := startListening(t, n)
	if first.Stderr || first.Time.Before(before.Add(-time.Minute)) || first.Time.After(time.Now().Add(time.Minute)) {
		t.Errorf("first line: %+v (want stdout, timestamped about now)", first)
	}

	// Following: the stream ends when the container stops, with its last
	// lines.
	var mu sync.Mutex
	var followed []executor.LogLine
	done := make(chan error, 1)
	go func() {
		done <- n.LogStream(c, id, executor.LogOptions{Follow: true}, func(l executor.LogLine) {
			mu.Lock()
			followed = append(followed, l)
			mu.Unlock()
		})
	}()
	if err := n.StopContainer(c, id, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-c.Done():
		t.Fatal("a followed stream did not end when its container stopped")
	}
	mu.Lock()
	texts := lineTexts(followed)
	mu.Unlock()
	if len(texts) < 2 || texts[0] != first.Text || !strings.Contains(texts[len(texts)-1], "signal received") {
		t.Errorf("followed lines: %q", texts)
	}

	var tail []executor.LogLine
	if err := n.LogStream(c, id, executor.LogOptions{Tail: 1}, func(l executor.LogLine) { tail = append(tail, l) }); err != nil {
		t.Fatal(err)
	}
	if len(tail) != 1 || !strings.Contains(tail[0].Text, "signal received") {
		t.Errorf("tail 1: %q", lineTexts(tail))
	}
	var since []executor.LogLine
	after := tail[len(tail)-1].Time.Add(time.Millisecond)
	if err := n.LogStream(c, id, executor.LogOptions{Since: after}, func(l executor.LogLine) { since = append(since, l) }); err != nil {
		t.Fatal(err)
	}
	if len(since) != 0 {
		t.Errorf("since after the last line: %q", lineTexts(since))
	}
	if err := n.LogStream(c, "nodetest-no-such-container", executor.LogOptions{}, func(executor.LogLine) {}); !errors.Is(err, executor.ErrNotFound) {
		t.Errorf("logs of a missing container: %v (want ErrNotFound)", err)
	}
}

func lineTexts(ls []executor.LogLine) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Text
	}
	return out
}

func testExec(t *testing.T, n executor.Node) {
	needImage(t, n)
	c := ctx(t)
	id, _ := startListening(t, n)

	var out, errOut bytes.Buffer
	code, err := n.Exec(c, id, executor.ExecOptions{Cmd: []string{"/echo", "check"}, Stdin: strings.NewReader("in"), Stdout: &out, Stderr: &errOut})
	if err != nil || code != 0 {
		t.Fatalf("/echo check: exit %d, %v (stdout %q, stderr %q)", code, err, out.String(), errOut.String())
	}
	out.Reset()
	code, err = n.Exec(c, id, executor.ExecOptions{Cmd: []string{"/echo", "check", "http://127.0.0.1:1/"}, Stdout: &out, Stderr: &errOut})
	if err != nil || code != 1 || !strings.Contains(errOut.String(), "check:") || out.Len() != 0 {
		t.Errorf("failing check: exit %d, %v (stdout %q, stderr %q; want 1 and the message on stderr)", code, err, out.String(), errOut.String())
	}
	// With a terminal, stderr comes on the one stream.
	out.Reset()
	code, err = n.Exec(c, id, executor.ExecOptions{Cmd: []string{"/echo", "check", "http://127.0.0.1:1/"}, TTY: true, Size: [2]uint{24, 80}, Stdin: strings.NewReader(""), Stdout: &out})
	if err != nil || code != 1 || !strings.Contains(out.String(), "check:") {
		t.Errorf("failing check with a TTY: exit %d, %v (output %q)", code, err, out.String())
	}

	if err := n.StopContainer(c, id, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Exec(c, id, executor.ExecOptions{Cmd: []string{"/echo", "check"}}); err == nil {
		t.Error("exec in a stopped container: no error")
	}
}
