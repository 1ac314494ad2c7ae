package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// independentHCL is n services of one replica each that neither depend on
// nor refer to each other, health-checked like the lifecycle's replicas.
func (b *bench) independentHCL(n int) string {
	var s strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&s, `service "s%d" {
  image    = %q
  replicas = 1

  health {
    tcp      = true
    port     = 8080
    interval = "1s"
  }

  update {
    monitor = %q
  }
}

`, i, imageV1, b.opts.monitor)
	}
	return s.String()
}

// independent is item 2c: three services that do not depend on each other
// deploy together (they share batches), against one of them alone. The
// ratio is three / one: 1.0 means no cost for the other two.
func (b *bench) independent() error {
	sec := b.section("independent", fmt.Sprintf("2c. Three independent services of 1 replica each vs one alone, first deploy, health-checked (monitor %s)", b.opts.monitor))
	three, p3, err := b.berthProject("ind3", b.independentHCL(3))
	if err != nil {
		return err
	}
	one, p1, err := b.berthProject("ind1", b.independentHCL(1))
	if err != nil {
		return err
	}
	threeS := sec.series("independent/three", "berth apply: three independent services", "berth", "s", "")
	oneS := sec.series("independent/one", "berth apply: one of them alone (three/one)", "berth", "s", "independent/three")
	sec.note("each service: %s, 1 replica, tcp health check on 8080 every 1s, update.monitor %s; destroyed (untimed) after every apply", imageV1, b.opts.monitor)
	for round := 0; round <= b.opts.rounds && b.ctx.Err() == nil; round++ {
		warm := round == 0
		for _, c := range []struct {
			dir, project string
			s            *Series
		}{{three, p3, threeS}, {one, p1, oneS}} {
			r := b.exec(b.ctx, cmdSpec{name: b.berth, args: []string{"apply", "-auto-approve", c.dir}, timeout: 5 * time.Minute, log: filepath.Join(b.tmp, "berth.log")})
			if r.err != nil {
				c.s.fail(warm, round, r.failure())
			} else {
				c.s.add(warm, r.dur.Seconds())
			}
			if err := b.resetBerth(b.ctx, c.dir, c.project); err != nil {
				return err
			}
		}
	}
	return nil
}
