package app_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Only the entry point imports app: it is the composition root, and the
// tests outside it build the same wiring with internal/testing/apitest.
func TestOnlyTheEntryPointImportsApp(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-f",
		`{{.ImportPath}}|{{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "carbroker/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "|")
		if pkg == "carbroker/function" || pkg == "carbroker/internal/app" {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if imp == "carbroker/internal/app" {
				t.Errorf("%s imports carbroker/internal/app", pkg)
			}
		}
	}
}

// The SCF build (make build: -tags scf) leaves dev mode out: the embedded
// CAR emulator, the embedded Redis and the console would make the package
// larger than SCF takes inline, and nothing on SCF may serve a fake CAR.
func TestSCFBuildHasNoDevMode(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-tags", "scf", "carbroker/function").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "carbroker/internal/httpapi") {
		t.Fatalf("go list -deps gave no product packages:\n%s", out)
	}
	for _, dep := range deps {
		for _, dev := range []string{"carbroker/internal/dev/caremu", "carbroker/internal/dev/console", "carbroker/internal/dev/memredis", "github.com/alicebob/miniredis"} {
			if strings.HasPrefix(dep, dev) {
				t.Errorf("the SCF build links %s", dep)
			}
		}
	}
}

// toolTrees are where the tools live: emulators and the console (dev),
// the deployer and packer (deploy), test kits and harnesses (testing), and
// the commands (cmd).
var toolTrees = []string{"carbroker/internal/dev/", "carbroker/internal/deploy", "carbroker/internal/testing/", "carbroker/internal/cmd/"}

func isTool(pkg string) bool {
	return slices.ContainsFunc(toolTrees, func(tree string) bool { return strings.HasPrefix(pkg, tree) })
}

// The product stands apart from its tools: no product package links a tool
// package (only app's dev build, left out by -tags scf, links the dev
// tools), and the deployed binary links none.
func TestTheProductLinksNoTool(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}|{{join .Deps " "}}`, "carbroker/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	products := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, "|")
		if !strings.HasPrefix(pkg, "carbroker/") || isTool(pkg) || pkg == "carbroker/internal/app" || pkg == "carbroker/function" {
			continue
		}
		products++
		for _, dep := range strings.Fields(deps) {
			if isTool(dep) {
				t.Errorf("product package %s links the tool %s", pkg, dep)
			}
		}
	}
	if products < 5 {
		t.Fatalf("only %d product packages found:\n%s", products, out)
	}
	out, err = exec.Command("go", "list", "-deps", "-tags", "scf", "carbroker/function").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if isTool(dep) {
			t.Errorf("the deployed binary links the tool %s", dep)
		}
	}
}
