package app_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Only the entry point imports app: the production wiring lives next to
// what it wires (httpapi.NewFromConfig), so no other package, nor any test
// outside this one, needs the program itself.
func TestOnlyTheEntryPointImportsApp(t *testing.T) {
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
	out, err := exec.Command("go", "list", "-deps", "-tags", "scf", "carbroker/function").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "carbroker/internal/httpapi") {
		t.Fatalf("go list -deps gave no product packages:\n%s", out)
	}
	for _, dep := range deps {
		for _, dev := range []string{"carbroker/internal/caremu", "carbroker/internal/console", "carbroker/internal/memredis", "github.com/alicebob/miniredis"} {
			if strings.HasPrefix(dep, dev) {
				t.Errorf("the SCF build links %s", dep)
			}
		}
	}
}
