package build

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SizeBudget is the most the deployed binary (make build) may weigh: 11 MiB.
// The zip that the deployer sends inline must stay under 7 MiB, and a
// smaller binary loads faster on a cold start. docs/performance.md has the
// figure and what it was before.
const SizeBudget = 11 << 20 // 11,534,336 bytes

// The binary that make build makes stays within its budget. It builds the
// function as make build does (TestMakeBuildBuildsLikeThis checks that make
// build makes the same bytes), with a version string as long as git describe
// gives for a dirty tree some way past a tag.
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

// make build makes, byte for byte, the binary the tests build and weigh
// (both builds are reproducible: -trimpath, -buildid=, no VCS stamp), so the
// size measured above is make build's. It runs make build into a temporary
// DIST, never the checkout's dist/.
func TestMakeBuildBuildsLikeThis(t *testing.T) {
	if testing.Short() {
		t.Skip("make-driven: runs make build and builds the function twice (-short)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	const version = "v1.2.3-test"
	dist := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "-C", filepath.Join("..", "..", ".."), "build", "DIST="+dist, "VERSION="+version, "GO=go")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	made, err := os.ReadFile(filepath.Join(dist, "main"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := function(context.Background(), t.TempDir(), true, version)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(made, ours) {
		t.Fatalf("make build's binary (%d bytes) differs from internal/testing/build's (%d bytes): the Makefile's build target and deployFlags disagree", len(made), len(ours))
	}
}
