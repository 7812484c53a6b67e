package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"carbroker/internal/deploy/scfemu"
)

// TestMakeDeploy runs make package, make deploy, make deploy-local and make
// remove as a user would, against the SCF API emulator: it packages once
// (into a temporary DIST, never the checkout's dist/), deploys, prints the
// Function URL and smoke-tests it (here the URL leads to a stand-in that
// answers /healthz), redeploys with nothing to write, rehearses locally and
// removes.
func TestMakeDeploy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and packages the function: not in -short")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	for _, k := range []string{"DRY_RUN", "VARIANT", "SMOKE", "CONFIRM", "DIST", "ZIP"} {
		if os.Getenv(k) != "" {
			t.Skipf("%s is set in this environment", k)
		}
	}
	var healthz atomic.Int32
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			healthz.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"Status":"ok","Version":"test"}`))
			return
		}
		http.NotFound(w, r)
	}))
	defer fn.Close()
	em := scfemu.New(scfemu.Options{URLHost: fn.Listener.Addr().String(), URLScheme: "http", CreateDelay: 50e6})
	endpoint, stop, err := em.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	root := filepath.Join("..", "..", "..")
	checkout := snapshot(filepath.Join(root, "dist"))
	dist := t.TempDir()
	env := []string{
		"TENCENTCLOUD_SECRETID=" + scfemu.DefaultSecretID, "TENCENTCLOUD_SECRETKEY=" + scfemu.DefaultSecretKey,
		"SCF_API_ENDPOINT=http://" + endpoint, "SCF_ROLE=carbroker-car", "CAR_PROJECT_ID=cap-12345",
		"AUTH_MODE=ticket", "AUTH_SECRET=make-deploy-test-secret-0123456789abcdefghijkl", "STAGE=maketest",
		"DIST=" + dist,
	}
	makeRun := func(args ...string) string {
		t.Helper()
		start := time.Now()
		cmd := exec.Command("make", append([]string{"--no-print-directory", "-C", root}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make %v: %v\n%s", args, err, out)
		}
		if strings.Contains(string(out), "make-deploy-test-secret") {
			t.Errorf("make %v printed the secret", args)
		}
		t.Logf("make %v: %s", args, time.Since(start).Round(100*time.Millisecond))
		return string(out)
	}
	makeRun("package") // once: the deploys below take its zip
	zipArg := "ZIP=" + filepath.Join(dist, "function.zip")
	out := makeRun("deploy", zipArg)
	for _, want := range []string{"plan: create the function", "url: http://" + fn.Listener.Addr().String(), "PASS", "healthz"} {
		if !strings.Contains(out, want) {
			t.Errorf("make deploy output lacks %q:\n%s", want, out)
		}
	}
	if healthz.Load() == 0 {
		t.Error("make deploy did not smoke-test the Function URL")
	}
	if f, ok := em.Function("", "carbroker-maketest"); !ok || f.Status != scfemu.Active || len(f.Triggers) != 2 {
		t.Fatalf("function %+v", f)
	}
	before := len(em.Calls())
	if out := makeRun("deploy", zipArg, "SMOKE=0"); !strings.Contains(out, "plan: no change") {
		t.Errorf("redeploy:\n%s", out)
	}
	for _, c := range em.Calls()[before:] {
		if c.Write() {
			t.Errorf("the unchanged redeploy called %s", c.Action)
		}
	}
	if out := makeRun("deploy-local", zipArg); !strings.Contains(out, "writes: 3 (CreateFunction, CreateTrigger, CreateTrigger)") || !strings.Contains(out, "writes: 0") {
		t.Errorf("make deploy-local:\n%s", out)
	}
	makeRun("remove", "CONFIRM=1")
	if _, ok := em.Function("", "carbroker-maketest"); ok {
		t.Error("make remove CONFIRM=1 left the function")
	}
	if now := snapshot(filepath.Join(root, "dist")); now != checkout {
		t.Errorf("the checkout's dist/ changed: %s, then %s", checkout, now)
	}
}

// snapshot describes a folder's files (names, sizes, times), or "absent".
func snapshot(dir string) string {
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p + " " + fi.ModTime().String() + " " + fi.Mode().String() + "\n")
		return nil
	})
	if err != nil {
		return "absent"
	}
	return b.String()
}
