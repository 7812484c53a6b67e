package build

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// SizeBudget is the most the deployed binary (make build) may weigh: 11 MiB.
// The zip that the deployer sends inline must stay under 7 MiB, and a
// smaller binary loads faster on a cold start. docs/performance.md has the
// figure and what it was before.
const SizeBudget = 11 << 20 // 11,534,336 bytes

// The binary that make build makes stays within its budget. It builds the
// function as make build does (the flags are checked against the Makefile
// below), with a version string as long as git describe gives for a dirty
// tree some way past a tag.
func TestDeployedBinarySize(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function (-short)")
	}
	bin, err := function(context.Background(), t.TempDir(), true, "v10.20.30-400-g0123456789ab-dirty")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("make build's binary: %d bytes (budget %d)", st.Size(), SizeBudget)
	if st.Size() > SizeBudget {
		t.Fatalf("make build's binary is %d bytes, %d over its budget of 11 MiB (%d bytes): find what grew it (go version -m, or build with and without the new dependency) before raising the budget in docs/performance.md",
			st.Size(), st.Size()-SizeBudget, SizeBudget)
	}
}

// The flags the tests build with are the Makefile's build target's.
func TestMakefileBuildsLikeThis(t *testing.T) {
	mk, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^LDFLAGS\s*:=\s*(.*)$`).FindSubmatch(mk)
	if m == nil || strings.TrimSpace(string(m[1])) != ldflags+" -X main.version=$(VERSION)" {
		t.Fatalf("the Makefile's LDFLAGS are not %q + main.version: %q", ldflags, m)
	}
	recipe := regexp.MustCompile(`(?m)^build:.*\n(?:\t.*\n)*`).Find(mk)
	if recipe == nil {
		t.Fatal("no build target in the Makefile")
	}
	want := "GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build"
	for _, f := range deployFlags("") {
		if !strings.HasPrefix(f, "-ldflags=") {
			want += " " + strings.Replace(f, "-tags=", "-tags ", 1)
		}
	}
	want += " -ldflags='$(LDFLAGS)'"
	if !strings.Contains(string(recipe), want) {
		t.Fatalf("the Makefile's build target:\n%s\nbuilds otherwise than internal/testing/build:\n\t%s", recipe, want)
	}
}
