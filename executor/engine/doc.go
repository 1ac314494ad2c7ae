// Package engine is the Docker Engine node: a Node speaks the Engine API to
// one engine, over SSH channels from a transport.Conn (NewSSH) or the local
// unix socket (NewLocal, OpenLocal). It owns the conversion between planner
// types and the Engine API (docker_convert.go), reading a node's listening
// sockets (hostports.go), and the image calls (inspect, build, save, tag,
// remove) used by the images package.
//
// *Node implements executor.Node structurally: the package must not import
// the executor core, images or fake packages, and it holds no decision
// logic. It takes its environment (DOCKER_HOST) from its callers, never
// from the process. rules.go exports the few engine rules that the
// in-memory fake follows too.
package engine
