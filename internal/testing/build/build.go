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

// ldflags are make build's -ldflags, without its -X main.version.
const ldflags = "-s -w -buildid="

// deployFlags are make build's flags (TestMakefileBuildsLikeThis checks
// them against the Makefile). The scf tag leaves dev mode (the embedded
// emulator, Redis and console) out of the deployed binary.
func deployFlags(version string) []string {
	ld := ldflags
	if version != "" {
		ld += " -X main.version=" + version
	}
	return []string{"-tags=scf", "-trimpath", "-buildvcs=false", "-ldflags=" + ld}
}

// Function builds the function into dir and returns the binary's path. It
// must run inside the module. With deploy, it builds as make build does
// (linux/amd64, cgo off, make build's flags, no dev mode); otherwise for
// this machine, with dev mode.
func Function(ctx context.Context, dir string, deploy bool) (string, error) {
	return function(ctx, dir, deploy, "")
}

// function is Function with make build's main.version (deploy only).
func function(ctx context.Context, dir string, deploy bool, version string) (string, error) {
	bin := filepath.Join(dir, "main")
	args := []string{"build", "-buildvcs=false"}
	if deploy {
		args = append([]string{"build"}, deployFlags(version)...)
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
