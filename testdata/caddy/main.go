// Command caddy is Caddy v2 with its standard modules, built from the Caddy
// Go module for the test cluster's image berth-test/caddy:2.11.9
// (scripts/testcluster) and for executor/proxy's integration tests: the
// test machines reach no image registry, so the official caddy image is
// rebuilt here from the same version.
//
// It is a module of its own so that berth's go.mod does not depend on Caddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
