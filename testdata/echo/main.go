// Command echo is the test image served by the local test cluster
// (scripts/testcluster): berth-test/echo:v1, :v2 and :broken.
//
// It answers
//
//	GET /         "echo <version> on <node>\n" (node: $NODE, else the hostname)
//	GET /healthz  200 "ok", or 500 in the broken variant
//	GET /write?f=NAME&v=VALUE   writes VALUE to /data/NAME (404 when /data is missing)
//	GET /read?f=NAME            returns /data/NAME (404 when /data or the file is missing)
//
// on $PORT (default 8080). The broken variant also exits with status 1 after
// $BROKEN_EXIT_AFTER (default 3s). SIGTERM and SIGINT make it exit 0 at once.
// "echo check [URL]" GETs URL (default http://127.0.0.1:$PORT/healthz) and
// exits 0 on a 2xx answer, 1 otherwise: usable as a Docker health check.
//
// The version and variant are baked in at build time:
//
//	go build -ldflags "-X main.version=v1 -X main.variant=broken" ./testdata/echo
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

var (
	version = "dev"
	variant = "" // "broken" makes /healthz fail and the process exit
)

const dataDir = "/data"

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if len(os.Args) > 1 && os.Args[1] == "check" {
		url := "http://127.0.0.1:" + port + "/healthz"
		if len(os.Args) > 2 {
			url = os.Args[2]
		}
		os.Exit(check(url))
	}

	node := os.Getenv("NODE")
	if node == "" {
		node, _ = os.Hostname()
	}
	broken := variant == "broken"

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "echo %s on %s\n", version, node)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if broken {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		p, ok := dataPath(w, r)
		if !ok {
			return
		}
		if err := os.WriteFile(p, []byte(r.URL.Query().Get("v")), 0o644); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		p, ok := dataPath(w, r)
		if !ok {
			return
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			http.NotFound(w, r)
			return
		} else if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})

	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Printf("echo %s (%s) listening on :%s as %s\n", version, orDefault(variant, "ok"), port, node)

	var exitAfter <-chan time.Time
	if broken {
		d, err := time.ParseDuration(os.Getenv("BROKEN_EXIT_AFTER"))
		if err != nil || d <= 0 {
			d = 3 * time.Second
		}
		exitAfter = time.After(d)
	}

	select {
	case <-ctx.Done():
		fmt.Println("echo: signal received, exiting")
		shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
		os.Exit(0)
	case <-exitAfter:
		fmt.Println("echo: broken variant giving up")
		os.Exit(1)
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

// dataPath returns the file under /data named by the f parameter, or answers
// 404 (no /data) or 400 (bad name) and returns false.
func dataPath(w http.ResponseWriter, r *http.Request) (string, bool) {
	if fi, err := os.Stat(dataDir); err != nil || !fi.IsDir() {
		http.Error(w, "no "+dataDir, http.StatusNotFound)
		return "", false
	}
	f := r.URL.Query().Get("f")
	if f == "" || strings.ContainsAny(f, "/\\") || f == "." || f == ".." {
		http.Error(w, "bad file name", http.StatusBadRequest)
		return "", false
	}
	return filepath.Join(dataDir, f), true
}

func check(url string) int {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintln(os.Stderr, "check:", resp.Status)
		return 1
	}
	return 0
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
