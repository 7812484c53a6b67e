package scfdeploy

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"carbroker/internal/car"
	"carbroker/internal/deploy/deploytest"
	"carbroker/internal/deploy/pack"
	"carbroker/internal/deploy/scfemu"
	"carbroker/internal/dev/tc3"
	"carbroker/internal/testing/build"
)

var root = filepath.Join("..", "..", "..")

var (
	buildOnce sync.Once
	buildDir  string // a temporary folder, removed by TestMain: never the checkout's dist/
	builtZip  string
	buildErr  error
	files     []pack.File
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// packageZip builds the function as make package does (linux/amd64, static)
// and zips it with the packer, once per test binary.
func packageZip(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and packages the function binary as make package does (-short)")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scfdeploy-pkg")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		bin, err := build.Function(context.Background(), dir, true) // as make package builds it
		if err != nil {
			buildErr = err
			return
		}
		files, buildErr = pack.Load(bin, filepath.Join(root, "function", "scf_bootstrap"))
		if buildErr == nil {
			builtZip = filepath.Join(dir, "function.zip")
			buildErr = pack.Zip(builtZip, files)
		}
	})
	if buildErr != nil {
		t.Fatalf("building the package: %v", buildErr)
	}
	return builtZip
}

// otherZip is the package with a different binary (a byte appended: still a valid ELF).
func otherZip(t *testing.T) string {
	packageZip(t)
	changed := slices.Clone(files)
	changed[0].Data = append(slices.Clone(changed[0].Data), 0)
	p := filepath.Join(t.TempDir(), "function.zip")
	if err := pack.Zip(p, changed); err != nil {
		t.Fatal(err)
	}
	return p
}

// urlOf reads the ExtranetUrl of an http trigger's TriggerDesc.
func urlOf(t *testing.T, desc string) string {
	t.Helper()
	d, ok := parseURLDesc(desc)
	if !ok || d.NetConfig.ExtranetUrl == "" {
		t.Fatalf("no ExtranetUrl in %s", desc)
	}
	return d.NetConfig.ExtranetUrl
}

type harness struct {
	t   *testing.T
	em  *scfemu.Emulator
	api http.Handler // what answers the deployer: em, or a test's stand-in in front of it
	env map[string]string
	out bytes.Buffer
	cl  *Client
}

// newHarness gives a test an emulator the deployer reaches in process
// (tc3.InProcess: no socket, so the test may run in a synctest bubble,
// where its waits take no real time) and the environment of a deploy.
func newHarness(t *testing.T, opt scfemu.Options) *harness {
	t.Helper()
	em := scfemu.New(opt)
	// The endpoint is never dialled; were it, nothing listens on port 1.
	return &harness{t: t, em: em, api: em, env: deploytest.Env("http://127.0.0.1:1")}
}

func (h *harness) spec(file string) *Spec {
	h.t.Helper()
	s, err := Load(filepath.Join(root, file), LoadOptions{Getenv: func(k string) string { return h.env[k] }, DotenvDirs: []string{}})
	if err != nil {
		h.t.Fatal(err)
	}
	creds, err := Credentials(s.Env)
	if err != nil {
		h.t.Fatal(err)
	}
	h.cl, err = NewClient(creds, s.Region, s.Env("SCF_API_ENDPOINT"), tc3.InProcess(h.api))
	if err != nil {
		h.t.Fatal(err)
	}
	h.cl.backoff = 10 * time.Millisecond
	return s
}

// deploy runs one deploy and returns its result, error and the calls it made.
func (h *harness) deploy(file, zipPath string, dryRun bool) (Result, error, []scfemu.Call) {
	h.t.Helper()
	before := len(h.em.Calls())
	s := h.spec(file)
	res, err := Deploy(context.Background(), s, zipPath, Options{Client: h.cl, Out: &h.out, DryRun: dryRun, Poll: 20 * time.Millisecond, Wait: 30 * time.Second})
	if err != nil {
		h.out.WriteString(err.Error())
	}
	return res, err, h.em.Calls()[before:]
}

// writes lists the write actions among calls that succeeded.
func writes(calls []scfemu.Call) []string {
	var out []string
	for _, c := range calls {
		if c.Write() {
			out = append(out, c.Action)
		}
	}
	return out
}

func (h *harness) noSecrets() {
	h.t.Helper()
	for _, s := range deploytest.Secrets {
		if strings.Contains(h.out.String(), s) {
			h.t.Errorf("the output shows a secret:\n%s", h.out.String())
		}
	}
}

func TestFirstDeployRedeployAndChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{CreateDelay: 100 * time.Millisecond, UpdateDelay: 100 * time.Millisecond})
		zipPath := packageZip(t)
		res, err, calls := h.deploy("serverless.yml", zipPath, false)
		if err != nil {
			t.Fatalf("first deploy: %v\n%s", err, h.out.String())
		}
		if got := writes(calls); !slices.Equal(got, []string{"CreateFunction", "CreateTrigger", "CreateTrigger"}) {
			t.Errorf("first deploy wrote %v, want the function, its URL and its timer", got)
		}
		fn, ok := h.em.Function("", "carbroker-dev")
		if !ok || fn.Status != scfemu.Active || fn.Runtime != "Go1" || fn.Handler != "main" || fn.Type != "Event" ||
			fn.MemorySize != 64 || fn.Timeout != 15 || fn.InitTimeout != 10 || fn.Role != "carbroker-car" {
			t.Fatalf("function %+v", fn)
		}
		checkPackage(t, fn.Zip)
		want, _ := os.ReadFile(zipPath)
		if !bytes.Equal(fn.Zip, want) {
			t.Error("the emulator received another zip than dist/function.zip")
		}
		for _, v := range fn.Variables {
			if v.Value == "" || v.Key == "JWT_SECRET" {
				t.Errorf("variable %s=%q sent", v.Key, v.Value)
			}
		}
		if !slices.ContainsFunc(fn.Variables, func(v scfemu.Variable) bool { return v.Key == "AUTH_SECRET" && v.Value == deploytest.Secrets[0] }) {
			t.Errorf("AUTH_SECRET not deployed: %v", fn.Variables)
		}
		if len(fn.Triggers) != 2 || fn.Triggers[0].Type != "http" || fn.Triggers[0].Qualifier != "$DEFAULT" ||
			!strings.Contains(fn.Triggers[0].Desc, `"AuthType":"NONE"`) || strings.Contains(fn.Triggers[0].Desc, "Cors") {
			t.Errorf("triggers %+v", fn.Triggers)
		}
		if tr := fn.Triggers[1]; tr.Type != "timer" || tr.Name != "sweep" || tr.Desc != `{"cron":"0 */1 * * * * *"}` || !tr.Enable || tr.Qualifier != "$DEFAULT" {
			t.Errorf("timer %+v", tr)
		}
		if fn.Triggers[0].Name != DefaultURLTriggerName {
			t.Errorf("the Function URL trigger is named %s, want the component toolkit's %s", fn.Triggers[0].Name, DefaultURLTriggerName)
		}
		wantURL := urlOf(t, fn.Triggers[0].Desc)
		if !slices.Equal(res.URLs, []string{wantURL}) || !strings.Contains(h.out.String(), "url: "+wantURL) {
			t.Errorf("URLs %v\n%s", res.URLs, h.out.String())
		}
		for _, w := range []string{"plan: create the function", "+ variable AUTH_SECRET: <secret>", "+ variable COMPAT_SIGN_SALT: <secret>",
			"+ variable QUEUE_REDIS_URL: redis://broker:<secret>@10.0.0.5:6379/0", "+ variable CAR_PROJECT_ID: cap-12345", "create: Creating, waiting for Active"} {
			if strings.Contains(w, "QUEUE_REDIS_URL") && !slices.ContainsFunc(fn.Variables, func(v scfemu.Variable) bool { return v.Key == "QUEUE_REDIS_URL" }) {
				continue // the file does not pass QUEUE_REDIS_URL (yet)
			}
			if !strings.Contains(h.out.String(), w) {
				t.Errorf("the output lacks %q:\n%s", w, h.out.String())
			}
		}

		h.out.Reset()
		if _, err, calls := h.deploy("serverless.yml", zipPath, false); err != nil || len(writes(calls)) != 0 || !strings.Contains(h.out.String(), "plan: no change") {
			t.Errorf("unchanged redeploy: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}

		h.out.Reset()
		if _, err, calls := h.deploy("serverless.yml", otherZip(t), false); err != nil || !slices.Equal(writes(calls), []string{"UpdateFunctionCode"}) {
			t.Errorf("code-only change: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}

		h.out.Reset()
		h.env["LOG_LEVEL"] = "debug"
		h.env["AUTH_SECRET"] = deploytest.Secrets[0] + "-rotated"
		_, err, calls = h.deploy("serverless.yml", otherZip(t), false)
		if err != nil || !slices.Equal(writes(calls), []string{"UpdateFunctionConfiguration"}) {
			t.Errorf("config-only change: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}
		for _, w := range []string{"+ variable LOG_LEVEL: debug", "~ variable AUTH_SECRET: <secret> -> <secret, changed>"} {
			if !strings.Contains(h.out.String(), w) {
				t.Errorf("the plan lacks %q:\n%s", w, h.out.String())
			}
		}
		if fn, _ := h.em.Function("", "carbroker-dev"); !slices.Contains(fn.Variables, scfemu.Variable{Key: "LOG_LEVEL", Value: "debug"}) {
			t.Errorf("variables after the change: %v", fn.Variables)
		}

		h.out.Reset()
		delete(h.env, "LOG_LEVEL")
		h.em.Hold("", "carbroker-dev", scfemu.Updating, 200*time.Millisecond)
		_, err, calls = h.deploy("serverless.yml", otherZip(t), false)
		if err != nil || !slices.Equal(writes(calls), []string{"UpdateFunctionConfiguration"}) || !strings.Contains(h.out.String(), "Updating, waiting for Active") {
			t.Errorf("deploy while Updating: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}
		for _, c := range calls {
			if c.Code != "" {
				t.Errorf("%s answered %s: the deploy did not wait", c.Action, c.Code)
			}
		}
		if fn, _ := h.em.Function("", "carbroker-dev"); slices.ContainsFunc(fn.Variables, func(v scfemu.Variable) bool { return v.Key == "LOG_LEVEL" }) {
			t.Error("LOG_LEVEL, now unset, is still deployed")
		}
		h.noSecrets()
	})
}

// checkPackage checks the zip holds a linux/amd64 ELF main and scf_bootstrap, both 0755.
func checkPackage(t *testing.T, b []byte) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range zr.File {
		seen[f.Name] = true
		if f.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v", f.Name, f.Mode())
		}
		if f.Name == "main" {
			rc, _ := f.Open()
			data, _ := io.ReadAll(rc)
			rc.Close()
			ef, err := elf.NewFile(bytes.NewReader(data))
			if err != nil || ef.Machine != elf.EM_X86_64 || ef.OSABI != elf.ELFOSABI_NONE && ef.OSABI != elf.ELFOSABI_LINUX {
				t.Errorf("main is not a linux/amd64 ELF: %v", err)
			}
		}
	}
	if !seen["main"] || !seen["scf_bootstrap"] {
		t.Errorf("the package holds %v", seen)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		zipPath := deploytest.TinyZip(t, "")
		if _, err, calls := h.deploy("serverless.yml", zipPath, true); err != nil || len(writes(calls)) != 0 {
			t.Fatalf("dry run of a new function: %v, writes %v", err, writes(calls))
		}
		if _, ok := h.em.Function("", "carbroker-dev"); ok || !strings.Contains(h.out.String(), "dry run: nothing changed") ||
			!strings.Contains(h.out.String(), "+ variable AUTH_SECRET: <secret>") {
			t.Errorf("dry run:\n%s", h.out.String())
		}
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		h.out.Reset()
		h.env["CAR_PROJECT_ID"] = "cap-67890"
		if _, err, calls := h.deploy("serverless.yml", deploytest.TinyZip(t, "changed"), true); err != nil || len(writes(calls)) != 0 ||
			!strings.Contains(h.out.String(), "~ variable CAR_PROJECT_ID: cap-12345 -> cap-67890") || !strings.Contains(h.out.String(), "~ code (sha256)") {
			t.Errorf("dry run of a change: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}
		h.noSecrets()
	})
}

func TestFailuresAndPermissions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{CreateDelay: 50 * time.Millisecond})
		zipPath := deploytest.TinyZip(t, "")

		h.em.Deny("cam:PassRole", true)
		_, err, _ := h.deploy("serverless.yml", zipPath, false)
		if err == nil || !strings.Contains(err.Error(), "missing permission cam:PassRole") || !strings.Contains(err.Error(), "SCF_ROLE") {
			t.Errorf("PassRole denied: %v", err)
		}
		h.em.Deny("cam:PassRole", false)
		h.em.Deny("scf:GetFunction", true)
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err == nil || !strings.Contains(err.Error(), "missing permission scf:GetFunction") {
			t.Errorf("GetFunction denied: %v", err)
		}
		h.em.Deny("scf:GetFunction", false)

		// A failed update exits non-zero with its reasons; deploying the same
		// file again must not claim success over the UpdateFailed function.
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		h.env["LOG_LEVEL"] = "warn"
		h.em.FailNext(scfemu.StatusReason{ErrorCode: "InternalError.System", ErrorMessage: "no capacity to update"})
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err == nil || !strings.Contains(err.Error(), "no capacity to update") {
			t.Errorf("failed update: %v", err)
		}
		if _, err, calls := h.deploy("serverless.yml", zipPath, false); err == nil || !strings.Contains(err.Error(), "no capacity to update") || len(writes(calls)) != 0 {
			t.Errorf("unchanged deploy over an UpdateFailed function: %v, writes %v", err, writes(calls))
		}
		delete(h.env, "LOG_LEVEL")
		if _, err, calls := h.deploy("serverless.yml", zipPath, false); err != nil || len(writes(calls)) != 1 {
			t.Errorf("a changed deploy retries the failed update: %v, writes %v", err, writes(calls))
		}
		if err := Remove(context.Background(), h.spec("serverless.yml"), true, Options{Client: h.cl, Out: &h.out, Poll: 20 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}

		h.em.FailNext(scfemu.StatusReason{ErrorCode: "InternalError.System", ErrorMessage: "the image could not be pulled"})
		_, err, _ = h.deploy("serverless.yml", zipPath, false)
		if err == nil || !strings.Contains(err.Error(), "CreateFailed") || !strings.Contains(err.Error(), "the image could not be pulled") {
			t.Errorf("failed create: %v", err)
		}
		if _, err, calls := h.deploy("serverless.yml", zipPath, false); err == nil || !strings.Contains(err.Error(), "make remove CONFIRM=1") || len(writes(calls)) != 0 {
			t.Errorf("deploy over a CreateFailed function: %v", err)
		}
		if err := Remove(context.Background(), h.spec("serverless.yml"), false, Options{Client: h.cl, Out: &h.out, Poll: 20 * time.Millisecond}); err == nil {
			t.Error("remove without CONFIRM removed")
		}
		if _, ok := h.em.Function("", "carbroker-dev"); !ok {
			t.Error("remove without CONFIRM deleted the function")
		}
		if err := Remove(context.Background(), h.spec("serverless.yml"), true, Options{Client: h.cl, Out: &h.out, Poll: 20 * time.Millisecond}); err != nil {
			t.Error(err)
		}
		if _, ok := h.em.Function("", "carbroker-dev"); ok {
			t.Error("remove left the function")
		}

		h.em.Throttle("GetFunction", 2)
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Errorf("throttled twice, then a deploy: %v", err)
		}
		big := filepath.Join(t.TempDir(), "big.zip")
		if err := os.WriteFile(big, make([]byte, MaxInlineZip+1), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err, calls := h.deploy("serverless.yml", big, false); err == nil || !strings.Contains(err.Error(), "COS") || len(calls) != 0 {
			t.Errorf("oversized zip: %v, %d calls", err, len(calls))
		}
		h.noSecrets()
	})
}

func TestVariants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{Base64Sha256: true})
		zipPath := packageZip(t)
		res, err, calls := h.deploy("docs/deploy/web/serverless.yml", zipPath, false)
		if err != nil || !slices.Equal(writes(calls), []string{"CreateFunction", "CreateTrigger"}) || len(res.URLs) != 1 {
			t.Fatalf("web: %v %v %v\n%s", err, writes(calls), res.URLs, h.out.String())
		}
		if fn, _ := h.em.Function("", "carbroker-web-dev"); fn.Type != "HTTP" || fn.Status != scfemu.Active || fn.Handler != "" {
			t.Errorf("web function %+v", fn)
		}
		if _, err, calls := h.deploy("docs/deploy/web/serverless.yml", zipPath, false); err != nil || len(writes(calls)) != 0 {
			t.Errorf("web redeploy with a base64 CodeSha256: %v %v", err, writes(calls))
		}

		h.env["APIGW_SERVICE_ID"] = "service-abc"
		h.out.Reset()
		if _, err, calls := h.deploy("docs/deploy/apigw/serverless.yml", zipPath, false); err != nil || !slices.Equal(writes(calls), []string{"CreateFunction"}) ||
			!strings.Contains(h.out.String(), "no API Gateway trigger") {
			t.Errorf("apigw: %v %v\n%s", err, writes(calls), h.out.String())
		}
		h.em.AddTrigger("", "carbroker-apigw-dev", scfemu.Trigger{Name: "apigw-1", Type: "apigw", Qualifier: "$DEFAULT", Desc: `{"api":{}}`, Enable: true})
		h.out.Reset()
		h.env["LOG_LEVEL"] = "warn"
		if _, err, calls := h.deploy("docs/deploy/apigw/serverless.yml", zipPath, false); err != nil || !slices.Equal(writes(calls), []string{"UpdateFunctionConfiguration"}) ||
			!strings.Contains(h.out.String(), "left as they are: apigw-1") {
			t.Errorf("apigw with a trigger: %v %v\n%s", err, writes(calls), h.out.String())
		}
		if fn, _ := h.em.Function("", "carbroker-apigw-dev"); len(fn.Triggers) != 1 || fn.Triggers[0].Type != "apigw" {
			t.Errorf("apigw triggers %+v", fn.Triggers)
		}
		h.noSecrets()
	})
}

func TestFunctionURLIsReconciled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		zipPath := deploytest.TinyZip(t, "")
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		// Someone turned the intranet on in the console and added a second URL trigger elsewhere.
		cl := h.cl
		if err := cl.UpdateTrigger(context.Background(), "", "carbroker-dev", Trigger{Name: DefaultURLTriggerName, Type: "http", Qualifier: "$DEFAULT",
			Desc: `{"AuthType":"NONE","NetConfig":{"EnableIntranet":true,"EnableExtranet":true}}`}); err != nil {
			t.Fatal(err)
		}
		h.em.AddTrigger("", "carbroker-dev", scfemu.Trigger{Name: "url-2", Type: "http", Qualifier: "$DEFAULT", Desc: `{"AuthType":"CAM"}`})
		_, err, calls := h.deploy("serverless.yml", zipPath, false)
		if err != nil || !slices.Equal(writes(calls), []string{"UpdateTrigger", "DeleteTrigger"}) {
			t.Fatalf("reconcile: %v %v\n%s", err, writes(calls), h.out.String())
		}
		fn, _ := h.em.Function("", "carbroker-dev")
		if len(fn.Triggers) != 2 || fn.Triggers[0].Type != "http" || !strings.Contains(fn.Triggers[0].Desc, `"EnableIntranet":false`) {
			t.Errorf("triggers %+v", fn.Triggers)
		}
	})
}

func TestCredentialsOrder(t *testing.T) {
	env := map[string]string{"TENCENTCLOUD_SECRET_ID": "AKIDsdk", "TENCENTCLOUD_SECRET_KEY": "k2"}
	if c, err := Credentials(func(k string) string { return env[k] }); err != nil || c.ID != "AKIDsdk" {
		t.Errorf("SDK names: %+v %v", c, err)
	}
	env["TENCENTCLOUD_SECRETID"], env["TENCENTCLOUD_SECRETKEY"], env["TENCENTCLOUD_SESSIONTOKEN"] = "AKIDscf", "k1", "tok"
	if c, err := Credentials(func(k string) string { return env[k] }); err != nil || c != (car.Credentials{ID: "AKIDscf", Key: "k1", Token: "tok"}) {
		t.Errorf("SCF names first: %+v %v", c, err)
	}
	profile := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(profile, []byte("[default]\nsecret_id = AKIDprofile\nsecret_key = k3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TENCENTCLOUD_CREDENTIALS_FILE", profile)
	if c, err := Credentials(func(string) string { return "" }); err != nil || c.ID != "AKIDprofile" {
		t.Errorf("profile: %+v %v", c, err)
	}
	t.Setenv("TENCENTCLOUD_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	if _, err := Credentials(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "TENCENTCLOUD_SECRETID") {
		t.Errorf("none: %v", err)
	}
	cliNames := map[string]string{"TENCENT_SECRET_ID": "AKIDcli", "TENCENT_SECRET_KEY": "k4"}
	if _, err := Credentials(func(k string) string { return cliNames[k] }); err == nil || !strings.Contains(err.Error(), "rename it") || strings.Contains(err.Error(), "k4") {
		t.Errorf("the CLI's names: %v", err)
	}
}
