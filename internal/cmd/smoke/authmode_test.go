package main

import (
	"strings"
	"testing"
)

// The smoke reports the AUTH_MODE the server actually runs (not only what
// it sends), and what its flags lack for it.
func TestReportsTheServersAuthMode(t *testing.T) {
	_, out := runSmoke(t, nil, "-url", broker(t, documented))
	if !strings.Contains(out, "server AUTH_MODE=ticket") {
		t.Errorf("ticket mode not reported:\n%s", out)
	}
	jwtMode := map[string]string{"CAR_PROJECT_ID": "cap-abc123", "AUTH_MODE": "jwt", "JWT_SECRET": strings.Repeat("k", 32)}
	_, out = runSmoke(t, nil, "-url", broker(t, jwtMode))
	if !strings.Contains(out, "server AUTH_MODE=jwt") || !strings.Contains(out, "-token") || !strings.Contains(out, "make jwt") {
		t.Errorf("jwt mode without a token not explained:\n%s", out)
	}
	code, out := runSmoke(t, nil, "-url", (&fake{mode: "none", version: "v1"}).serve(t))
	if code != 0 || !strings.Contains(out, "not reported") {
		t.Errorf("an older broker (no Auth in /healthz): %d\n%s", code, out)
	}
}
