// Package fake is an in-memory Docker engine node for tests (restic's mem
// backend is the model): fake.Node behaves like an engine where it matters
// to berth and passes the shared suite in executor/nodetest; LocalEngine
// fakes the machine's own engine that images are sent from.
//
// Only tests may import it: it must stay out of the berth binary (go list
// -deps ./cmd/berth must not list it). It must not import the executor core
// (the core's own tests use it); it follows the engine's rules through
// engine/rules.go rather than copying them.
package fake
