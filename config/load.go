package config

import "github.com/hashicorp/hcl/v2"

// VarArg is one -var or -var-file flag, kept in command-line order because
// later flags win (Terraform's rule).
type VarArg struct {
	File  bool   // true: -var-file PATH; false: -var NAME=VALUE
	Value string // "NAME=VALUE" or the file path
}

// Inputs are the values supplied from outside the configuration.
type Inputs struct {
	Args []VarArg
	// Environ is os.Environ()-style "KEY=value"; BERTH_VAR_name sets var.name.
	Environ []string
}

// Load reads every *.hcl file in dir and returns the resolved configuration.
// Diagnostics include warnings; the Config is nil only when errors make it
// meaningless.
func Load(dir string, in Inputs) (*Config, hcl.Diagnostics) {
	return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "config.Load: not implemented yet"}}
}
