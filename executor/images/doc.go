// Package images is apply's image step: it builds images on the local
// engine (content-tagged build contexts), sends them to the nodes that lack
// them (one docker save teed to every node, optionally gzipped and rate
// limited, with progress), tags images a node holds under another name, and
// pulls on the nodes with registry credentials from the Docker config and
// credential helpers. LocalFacts gives the planner the build tags and the
// local engine's images.
//
// It works on nodes through its small Node interface, got by name from a
// function, so it must not import the executor core (the core adapts its
// Session with executor.NewImageStep). It takes its environment from
// Options.Environ and its arguments, never from the process.
package images
