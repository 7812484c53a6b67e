package main

import (
	"bytes"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"carbroker/internal/deploy/deploytest"
	"carbroker/internal/deploy/scfemu"
)

// setup serves an emulator on 127.0.0.1 and returns the environment of a
// deploy to it, the serverless.yml (a copy of the repository's, in a folder
// without .env) and a zip.
func setup(t *testing.T) (*scfemu.Emulator, map[string]string, string, string) {
	t.Helper()
	em := scfemu.New(scfemu.Options{})
	env := deploytest.Env(deploytest.Listen(t, em))
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "serverless.yml"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "serverless.yml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return em, env, file, deploytest.TinyZip(t, "")
}

func runCmd(env map[string]string, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(args, "-poll", "10ms"), func(k string) string { return env[k] }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestDeployCommand(t *testing.T) {
	t.Parallel()
	em, env, file, zipPath := setup(t)
	urlFile := filepath.Join(t.TempDir(), "url")

	if code, out, _ := runCmd(env, "-file", file, "-zip", zipPath, "-stage", "prod", "-dry-run", "-url-file", urlFile); code != 0 || !strings.Contains(out, "plan: create the function") {
		t.Fatalf("dry run: %d\n%s", code, out)
	}
	if _, ok := em.Function("", "carbroker-prod"); ok {
		t.Fatal("the dry run created the function")
	}
	if _, err := os.Stat(urlFile); err == nil {
		t.Error("the dry run wrote the URL file")
	}

	code, out, errOut := runCmd(env, "-file", file, "-zip", zipPath, "-stage", "prod", "-url-file", urlFile)
	if code != 0 {
		t.Fatalf("deploy: %d\n%s\n%s", code, out, errOut)
	}
	fn, _ := em.Function("", "carbroker-prod")
	if b, _ := os.ReadFile(urlFile); len(fn.Triggers) == 0 || !strings.Contains(fn.Triggers[0].Desc, `"ExtranetUrl":"`+strings.TrimSpace(string(b))+`"`) ||
		!strings.HasPrefix(string(b), "https://1250000000-") {
		t.Errorf("URL file %q, triggers %+v", b, fn.Triggers)
	}
	if strings.Contains(out+errOut, env["AUTH_SECRET"]) || strings.Contains(out+errOut, scfemu.DefaultSecretKey) {
		t.Errorf("a secret in the output:\n%s\n%s", out, errOut)
	}

	if code, _, errOut := runCmd(env, "-remove", "-file", file, "-stage", "prod"); code != 1 || !strings.Contains(errOut, "CONFIRM=1") {
		t.Errorf("remove without -confirm: %d %s", code, errOut)
	}
	if code, out, errOut := runCmd(env, "-remove", "-confirm", "-file", file, "-stage", "prod"); code != 0 || !strings.Contains(out, "removed carbroker-prod") {
		t.Errorf("remove: %d %s %s", code, out, errOut)
	}
	if _, ok := em.Function("", "carbroker-prod"); ok {
		t.Error("remove left the function")
	}

	em.FailNext(scfemu.StatusReason{ErrorCode: "InternalError", ErrorMessage: "no capacity in the zone"})
	if code, _, errOut := runCmd(env, "-file", file, "-zip", zipPath); code != 1 || !strings.Contains(errOut, "CreateFailed: InternalError: no capacity in the zone") {
		t.Errorf("failed create: %d %s", code, errOut)
	}
}

// TestLocalRehearsal: -local (make deploy-local) needs no credentials and
// no settings, deploys twice into its own emulator and shows the plan, the
// Function URL, the writes of the first run and none in the second.
func TestLocalRehearsal(t *testing.T) {
	t.Parallel()
	_, _, file, zipPath := setup(t)
	env := map[string]string{"AUTH_SECRET": "never-printed-0123456789abcdefghijklmnop"}
	code, out, errOut := runCmd(env, "-local", "-file", file, "-zip", zipPath)
	if code != 0 {
		t.Fatalf("-local: %d\n%s\n%s", code, out, errOut)
	}
	first, second, ok := strings.Cut(out, "== second deploy")
	for _, want := range []string{"local rehearsal: the SCF API emulator on http://127.0.0.1:", "CAR_PROJECT_ID is not set: using the example",
		"plan: create the function", "+ variable CAR_PROJECT_ID: cap-local00000", "+ Function URL url-trigger on $DEFAULT", "+ timer sweep",
		"writes: 3 (CreateFunction, CreateTrigger, CreateTrigger)", "Function URL: https://1250000000-"} {
		if !ok || !strings.Contains(first, want) {
			t.Errorf("the first run lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"plan: no change", "writes: 0"} {
		if !strings.Contains(second, want) {
			t.Errorf("the second run lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, env["AUTH_SECRET"]) {
		t.Error("the rehearsal printed the secret")
	}
	env["AUTH_MODE"] = "tiket"
	if code, _, errOut := runCmd(env, "-local", "-file", file, "-zip", zipPath); code != 1 || !strings.Contains(errOut, "AUTH_MODE must be one of") {
		t.Errorf("-local with a misconfiguration: %d %s", code, errOut)
	}
}

// TestMisconfigurationWritesNothing: each misconfiguration issue 16 names
// stops make deploy before any call.
func TestMisconfigurationWritesNothing(t *testing.T) {
	t.Parallel()
	em, env, file, zipPath := setup(t)
	for k, v := range map[string]string{"AUTH_MODE": "tiket", "CAR_PROJECT_ID": "1300012345", "SCF_ROLE": "", "AUTH_SECRET": "replace-with-the-output-of-openssl-rand-base64-48"} {
		bad := maps.Clone(env)
		bad[k] = v
		if code, _, errOut := runCmd(bad, "-file", file, "-zip", zipPath); code != 1 || !strings.Contains(errOut, "nothing was written") {
			t.Errorf("%s=%q: %d %s", k, v, code, errOut)
		}
	}
	if n := len(em.Calls()); n != 0 {
		t.Errorf("%d API calls", n)
	}
}

func TestDeployCommandUsage(t *testing.T) {
	_, env, file, zipPath := setup(t)
	env["SCF_API_ENDPOINT"] = "127.0.0.1:1"
	if code, _, errOut := runCmd(env, "-file", file, "-zip", zipPath); code != 2 || !strings.Contains(errOut, "SCF_API_ENDPOINT") {
		t.Errorf("endpoint without a scheme: %d %s", code, errOut)
	}
	if code, _, _ := runCmd(env, "-file", file, "extra"); code != 2 {
		t.Errorf("extra argument: %d", code)
	}
	t.Setenv("TENCENTCLOUD_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	delete(env, "TENCENTCLOUD_SECRETID")
	if code, _, errOut := runCmd(env, "-file", file, "-zip", zipPath); code != 1 || !strings.Contains(errOut, "no Tencent Cloud credentials") {
		t.Errorf("no credentials: %d %s", code, errOut)
	}
}

// TestMakefileWiring checks that make deploy and make remove take STAGE,
// VARIANT, DRY_RUN and CONFIRM from make's arguments and from the environment
// (make -n prints the commands; SMOKE=0 or DRY_RUN=1 keeps the smoke step,
// which make -n would run, from running).
func TestMakefileWiring(t *testing.T) {
	if testing.Short() {
		t.Skip("make-driven: runs make -n for each case (-short)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	for _, c := range []struct {
		args, env []string
		want      string
	}{
		{[]string{"deploy", "DRY_RUN=1"}, nil, "./internal/cmd/deploy -file serverless.yml  -zip dist/function.zip -url-file dist/function-url -dry-run"},
		{[]string{"deploy"}, []string{"DRY_RUN=1", "STAGE=prod", "VARIANT=web"}, "./internal/cmd/deploy -file docs/deploy/web/serverless.yml -stage prod -zip dist/function.zip -url-file dist/function-url -dry-run"},
		{[]string{"deploy", "SMOKE=0", "VARIANT=apigw"}, nil, "./internal/cmd/deploy -file docs/deploy/apigw/serverless.yml  -zip dist/function.zip -url-file dist/function-url \n"},
		{[]string{"remove"}, []string{"CONFIRM=1", "STAGE=prod"}, "./internal/cmd/deploy -remove -file serverless.yml -stage prod -confirm"},
		{[]string{"remove"}, nil, "./internal/cmd/deploy -remove -file serverless.yml  \n"},
		{[]string{"deploy-local"}, nil, "./internal/cmd/deploy -local -file serverless.yml  -zip dist/function.zip"},
		{[]string{"deploy", "ZIP=/tmp/built.zip", "DIST=/tmp/d", "SMOKE=0"}, nil, "./internal/cmd/deploy -file serverless.yml  -zip /tmp/built.zip -url-file /tmp/d/function-url \n"},
	} {
		cmd := exec.Command("make", append([]string{"-n", "--no-print-directory", "-C", filepath.Join("..", "..", "..")}, c.args...)...)
		cmd.Env = append(os.Environ(), c.env...)
		for _, k := range []string{"DRY_RUN", "STAGE", "VARIANT", "CONFIRM", "SMOKE"} {
			if os.Getenv(k) != "" {
				t.Skipf("%s is set in this environment", k)
			}
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), c.want) {
			t.Errorf("make %v with %v: %v\n%s\nwant %q", c.args, c.env, err, out, c.want)
		}
		if slices.Contains(c.args, "ZIP=/tmp/built.zip") && strings.Contains(string(out), "go build") {
			t.Errorf("make deploy ZIP=… builds anyway:\n%s", out)
		}
	}
	// A VARIANT without a file stops make before it builds anything.
	for _, goal := range []string{"deploy", "deploy-local", "remove"} {
		cmd := exec.Command("make", "-n", "--no-print-directory", "-C", filepath.Join("..", "..", ".."), goal, "VARIANT=foo")
		out, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(out), "go build") || !strings.Contains(string(out), "VARIANT=foo: there is no docs/deploy/foo/serverless.yml; the variants are: apigw web") {
			t.Errorf("make %s VARIANT=foo: %v\n%s", goal, err, out)
		}
	}
}
