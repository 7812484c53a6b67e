//go:build scf

package app

import (
	"context"
	"fmt"
)

// runDev refuses: the SCF build (make build, -tags scf) leaves dev mode's
// embedded CAR emulator, Redis and console out, which keeps the package
// within SCF's inline upload limit.
func runDev(_ context.Context, env Env, _, _ string) int {
	fmt.Fprintln(env.Stderr, "this binary was built for SCF (-tags scf) and has no dev mode: run `make run` in a checkout instead")
	return 2
}
