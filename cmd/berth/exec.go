package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/berth-dev/berth/executor"
)

func init() {
	register(&command{
		name:     "exec",
		synopsis: "Run a command in a replica of a service",
		usage:    "exec [options] SERVICE[.N] -- COMMAND [ARG...]",
		help: `
Runs COMMAND in a running replica of SERVICE (replica N with SERVICE.N,
else the lowest-numbered running replica), over the node's SSH connection
(the Docker exec API), like 'docker exec'. The configuration is read from
-dir (default: the current directory).

When stdin is a terminal, the command gets a terminal too (stdin is put in
raw mode while it runs) and its input; otherwise stdin is passed only with
-i. The command's output is shown as it writes it.

Exit status: the command's; 1 when berth itself fails (the configuration
has errors, the replica is not found or not running, the node cannot be
reached), with the reason on stderr; 130 when interrupted (Ctrl-C without
a terminal stops berth, not the command).`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			cf := addConnFlags(fs)
			dir := fs.String("dir", ".", "Read the configuration in `DIR`.")
			interactive := fs.Bool("i", false, "Pass stdin to the command even when it is not a terminal.")
			return func(ctx context.Context, s Streams, args []string) error {
				if len(args) < 2 {
					return usageErr("usage: berth exec [options] SERVICE[.N] -- COMMAND [ARG...]")
				}
				targets, err := parseTargets(args[:1])
				if err != nil {
					return err
				}
				cfg, err := loadConfig(s, *dir, cf)
				if err != nil {
					return err
				}
				raw := s // the command's own streams
				s = redactStreams(s, cfg)
				opts := executor.ExecOptions{Cmd: args[1:], Stdout: raw.Out, Stderr: raw.Err}
				inFile, _ := raw.In.(*os.File)
				outFile, _ := raw.Out.(*os.File)
				tty := raw.InTerminal && inFile != nil
				if tty || *interactive {
					opts.Stdin = raw.In
				}
				var restore func()
				if tty {
					opts.TTY = true
					if outFile != nil {
						if w, h, err := term.GetSize(int(outFile.Fd())); err == nil {
							opts.Size = [2]uint{uint(h), uint(w)}
						}
						opts.Resize = watchResize(ctx, int(outFile.Fd()))
					}
				}
				req := cf.request(s, cfg, executor.OpExec)
				req.Exec = &executor.ExecRequest{Target: targets[0], ExecOptions: opts,
					Started: func(executor.ReplicaLine) {
						// Raw mode once the SSH connections are up (a host
						// key prompt reads lines), just before the command.
						if tty {
							if st, err := term.MakeRaw(int(inFile.Fd())); err == nil {
								restore = func() { term.Restore(int(inFile.Fd()), st) }
							}
						}
					}}
				o, err := executor.Run(ctx, cfg, req, nil)
				if restore != nil {
					restore()
				}
				if err != nil && ctx.Err() != nil {
					// Without a terminal Ctrl-C reaches berth, not the
					// command: the exec API cannot stop it.
					return exitCode(130, errors.New("interrupted: the command may still be running in the container"))
				}
				if err != nil {
					return err
				}
				if o.ExitCode != 0 {
					return exitCode(o.ExitCode, nil)
				}
				return nil
			}
		},
	})
}

// watchResize sends the terminal's size whenever it changes, until ctx
// ends.
func watchResize(ctx context.Context, fd int) <-chan [2]uint {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	out := make(chan [2]uint, 1)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				if w, h, err := term.GetSize(fd); err == nil {
					select {
					case out <- [2]uint{uint(h), uint(w)}:
					default:
					}
				}
			}
		}
	}()
	return out
}
