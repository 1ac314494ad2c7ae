package main

import (
	"flag"
	"strings"

	"github.com/berth-dev/berth/config"
)

// varFlags collects -var and -var-file in command-line order.
type varFlags struct{ args []config.VarArg }

type varFlag struct {
	v    *varFlags
	file bool
}

func (f varFlag) String() string { return "" }
func (f varFlag) Set(s string) error {
	f.v.args = append(f.v.args, config.VarArg{File: f.file, Value: s})
	return nil
}

func addVarFlags(fs *flag.FlagSet) *varFlags {
	v := &varFlags{}
	fs.Var(varFlag{v: v}, "var", "Set a variable: -var 'NAME=VALUE'. Repeatable; later wins.")
	fs.Var(varFlag{v: v, file: true}, "var-file", "Read variables from an HCL file. Repeatable; later wins.")
	return v
}

// inputs returns the config inputs for these flags and the environment.
func (v *varFlags) inputs(s Streams) config.Inputs {
	return config.Inputs{Args: v.args, Environ: s.Environ}
}

// dirArg returns the configuration directory from positional args (default ".").
func dirArg(args []string) (string, error) {
	switch len(args) {
	case 0:
		return ".", nil
	case 1:
		return args[0], nil
	default:
		return "", usageErr("expected at most one directory, got %s", strings.Join(args, " "))
	}
}
