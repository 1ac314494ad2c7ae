package engine

import "github.com/docker/docker/client"

// Client returns the node's Docker API client, for callers that speak an
// API the Node methods do not cover (executor/swarmexec talks to a Swarm
// manager with it). It shares the node's connection and closes with it.
func (d *Node) Client() *client.Client { return d.cli }
