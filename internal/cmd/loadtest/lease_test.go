package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestLeaseBinary runs the lease scenario as make loadtest does, small.
func TestLeaseBinary(t *testing.T) {
	t.Parallel()
	bin := functionBinary(t)
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
