package main

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"carbroker/internal/scfemu"
)

// setup serves an emulator on 127.0.0.1 and returns the environment, the
// serverless.yml (a copy of the repository's, in a folder without .env) and a zip.
func setup(t *testing.T) (*scfemu.Emulator, map[string]string, string, string) {
	t.Helper()
	em := scfemu.New(scfemu.Options{SkipPackageCheck: true})
	endpoint, stop, err := em.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "serverless.yml"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "serverless.yml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("main")
	_, _ = w.Write([]byte("x"))
	_ = zw.Close()
	zipPath := filepath.Join(dir, "function.zip")
	if err := os.WriteFile(zipPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"TENCENTCLOUD_SECRETID": scfemu.DefaultSecretID, "TENCENTCLOUD_SECRETKEY": scfemu.DefaultSecretKey,
		"SCF_API_ENDPOINT": "http://" + endpoint, "SCF_ROLE": "carbroker-car", "AUTH_MODE": "ticket",
		"AUTH_SECRET": "a-secret-that-must-never-be-printed-0123456789",
	}
	return em, env, file, zipPath
}

func runCmd(env map[string]string, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(args, "-poll", "10ms"), func(k string) string { return env[k] }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestDeployCommand(t *testing.T) {
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
	if b, _ := os.ReadFile(urlFile); string(b) != "https://1250000000-function-url.ap-guangzhou.tencentscf.com\n" {
		t.Errorf("URL file %q", b)
	}
	if strings.Contains(out+errOut, env["AUTH_SECRET"]) || strings.Contains(out+errOut, scfemu.DefaultSecretKey) {
		t.Errorf("a secret in the output:\n%s\n%s", out, errOut)
	}

	if code, _, errOut := runCmd(env, "-remove", "-file", file, "-stage", "prod"); code != 1 || !strings.Contains(errOut, "CONFIRM=1") {
		t.Errorf("remove without -confirm: %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(env, "-remove", "-confirm", "-file", file, "-stage", "prod"); code != 0 {
		t.Errorf("remove: %d %s", code, errOut)
	}
	if _, ok := em.Function("", "carbroker-prod"); ok {
		t.Error("remove left the function")
	}

	em.FailNext(scfemu.StatusReason{ErrorCode: "InternalError", ErrorMessage: "no capacity in the zone"})
	if code, _, errOut := runCmd(env, "-file", file, "-zip", zipPath); code != 1 || !strings.Contains(errOut, "CreateFailed: InternalError: no capacity in the zone") {
		t.Errorf("failed create: %d %s", code, errOut)
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
	}
}
