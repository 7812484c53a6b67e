package main

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"carbroker/internal/testing/build"
)

// TestLeaseBinary runs the lease scenario as make loadtest does, small.
func TestLeaseBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	bin, err := build.Function(context.Background(), t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-bin", bin, "-lease", "-users", "20", "-interval", "1s"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stderr.String(), stdout.String())
	}
	summary := regexp.MustCompile(`^lease: 20 sessions, 0 ended late \(> interval \+ 5 s\), 0 destroyed twice, \d+\.\d\d CAR calls per sweep\n$`)
	if !summary.MatchString(stdout.String()) {
		t.Errorf("stdout %q is not one summary line", stdout.String())
	}
	t.Log(strings.TrimSpace(stderr.String()), "\n", strings.TrimSpace(stdout.String()))
}
