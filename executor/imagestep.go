package executor

import (
	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/images"
)

// EvImage is an event of apply's image step: Kind is build, send, tag or
// pull; Node is set for send, tag and pull.
const EvImage = "image"

// NewImageStep returns apply's image step for cfg over s's nodes. Unless
// opts sets them, it takes the session's environment (nil: the process's),
// home directory and parallelism.
func NewImageStep(cfg *config.Config, s *Session, opts images.Options) *images.Step {
	if opts.Environ == nil {
		opts.Environ = s.opts.environ()
	}
	if opts.HomeDir == "" {
		opts.HomeDir = s.opts.SSH.HomeDir
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = s.opts.Parallelism
	}
	return images.NewStep(cfg, func(name string) (images.Node, error) { return s.Node(name) }, opts)
}

// ImageEvent is the EvImage event of a finished image step.
func ImageEvent(e images.Event) Event {
	return Event{Time: e.Time, Type: EvImage, Kind: e.Kind, Node: e.Node, Message: e.Message}
}
