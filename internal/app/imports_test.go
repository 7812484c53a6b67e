package app_test

import (
	"os/exec"
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
