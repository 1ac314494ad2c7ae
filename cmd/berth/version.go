package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// commit is the VCS revision berth was built from, set by release builds
// with -ldflags "-X main.commit=..." (see .goreleaser.yaml). Other builds
// take it from the Go build info when the build recorded it.
var commit = ""

func init() {
	register(&command{
		name:     "version",
		synopsis: "Print berth's version",
		usage:    "version",
		help: "Prints berth's version, the commit it was built from (when known) and the Go version it was built with.\n\n" +
			"A release build sets both with -ldflags; `go install github.com/berth-dev/berth/cmd/berth@vX.Y.Z` gives the module version,\n" +
			"and a build from a git checkout (with VCS stamping on) gives the commit.",
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			return func(ctx context.Context, s Streams, args []string) error {
				info, _ := debug.ReadBuildInfo()
				v, c := versionOf(Version, commit, info)
				if c != "" {
					v += " commit " + c
				}
				fmt.Fprintf(s.Out, "berth %s (%s, %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			}
		},
	})
}

// versionOf is berth's version and commit: what the release build set, or
// else what the Go build info holds (the module version of a `go install
// ...@version`, the VCS revision of a build from a checkout, "-dirty" when
// the checkout had changes).
func versionOf(version, commit string, info *debug.BuildInfo) (string, string) {
	if info == nil {
		return version, commit
	}
	if version == defaultVersion && info.Main.Version != "" && info.Main.Version != "(devel)" {
		version = info.Main.Version
	}
	if commit == "" {
		var rev string
		var dirty bool
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && dirty {
			rev += "-dirty"
		}
		commit = rev
	}
	return version, commit
}

// usageErr is an error in how a command was called.
func usageErr(format string, a ...any) error {
	return exitCode(1, fmt.Errorf(format, a...))
}
