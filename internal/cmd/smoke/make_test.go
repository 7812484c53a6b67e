package main

import (
	"os/exec"
	"strings"
	"testing"
)

// make smoke does not echo its command line: SMOKE_FLAGS holds a
// ClientSession or a bearer token (README, "To production" step 5), which
// would land in the terminal's scrollback and in CI logs. GO=true stands in
// for the Go command: only make's own output is checked.
func TestMakeSmokeEchoesNoSecret(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	const cs, token = "CS-secret-client-session-0123", "eyJ-secret-token-4567"
	cmd := exec.Command("make", "--no-print-directory", "smoke", "GO=true", "URL=http://127.0.0.1:1",
		"SMOKE_FLAGS=-client-session "+cs+" -token "+token)
	cmd.Dir = "../../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make smoke: %v\n%s", err, out)
	}
	for _, secret := range []string{cs, token} {
		if strings.Contains(string(out), secret) {
			t.Errorf("make smoke printed %q:\n%s", secret, out)
		}
	}
}
