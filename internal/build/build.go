// Package build builds the function's binary for what runs it as a process:
// the end-to-end tests, the benchmarks and the load harness. It is the one
// place that knows how: the command's package and make build's flags.
package build

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Package is the function's command.
const Package = "carbroker/function"

// deployFlags are make build's flags, without its -X main.version. The scf
// tag leaves dev mode (the embedded emulator, Redis and console) out of the
// deployed binary.
var deployFlags = []string{"-tags=scf", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid="}

// Function builds the function into dir and returns the binary's path. It
// must run inside the module. With deploy, it builds as make build does
// (linux/amd64, cgo off, make build's flags, no dev mode); otherwise for
// this machine, with dev mode.
func Function(ctx context.Context, dir string, deploy bool) (string, error) {
	bin := filepath.Join(dir, "main")
	args := []string{"build", "-buildvcs=false"}
	if deploy {
		args = append([]string{"build"}, deployFlags...)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "-o", bin, Package)...)
	if deploy {
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s (run inside the module): %v\n%s", Package, err, out)
	}
	return bin, nil
}
