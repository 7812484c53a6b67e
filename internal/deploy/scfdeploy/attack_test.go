package scfdeploy

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"carbroker/internal/deploy/deploytest"
	"carbroker/internal/deploy/scfemu"
)

// The tests in this file drive the deployer against answers the live SCF
// API may give and the deployer once mishandled (found by attack): each
// names the official artifact the answer comes from.

func countCalls(calls []scfemu.Call, action string) (refused, done int) {
	for _, c := range calls {
		if c.Action == action {
			if c.Code != "" {
				refused++
			} else {
				done++
			}
		}
	}
	return
}

// TestCreateWaitsOutResourceInUseFunctionName: CreateFunction may refuse a
// name still held with ResourceInUse.FunctionName ("FunctionName已存在"),
// which tencentcloud-sdk-go's scf/v20180416 client.go lists for
// CreateFunction beside ResourceInUse.Function. Right after a remove, that
// is a deletion ending: the deploy waits it out as for .Function.
func TestCreateWaitsOutResourceInUseFunctionName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		h.em.ErrorNext("CreateFunction", "ResourceInUse.FunctionName", "FunctionName already exists", 2)
		_, err, calls := h.deploy("serverless.yml", deploytest.TinyZip(t, ""), false)
		refused, done := countCalls(calls, "CreateFunction")
		if err != nil || refused != 2 || done != 1 || !strings.Contains(h.out.String(), "SCF still holds the name") {
			t.Errorf("create while the name is held (.FunctionName): %v, refused %d, done %d\n%s", err, refused, done, h.out.String())
		}
	})
}

// TestDeletionAnsweringVersionNotFound: while a function is being deleted,
// GetFunction may answer ResourceNotFound.Version: Tencent's Terraform
// provider (tencentcloud/services/scf/service_tencentcloud_scf.go,
// DeleteFunction) keeps waiting on that code, and the SDK lists it for
// GetFunction. make remove and a deploy right after it must wait on too.
func TestDeletionAnsweringVersionNotFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{DeleteDelay: 300 * time.Millisecond, VersionGoneWhileDeleting: true})
		zipPath := deploytest.TinyZip(t, "")
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		if err := h.remove(true); err != nil || !strings.Contains(h.out.String(), "removed carbroker-dev") {
			t.Fatalf("remove: %v\n%s", err, h.out.String())
		}
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		// A deletion started elsewhere, still under way when the deploy begins.
		if err := h.cl.DeleteFunction(t.Context(), "", "carbroker-dev"); err != nil {
			t.Fatal(err)
		}
		h.out.Reset()
		_, err, calls := h.deploy("serverless.yml", zipPath, false)
		if err != nil || !slices.Equal(writes(calls), []string{"CreateFunction", "CreateTrigger", "CreateTrigger"}) {
			t.Errorf("deploy during a deletion answering ResourceNotFound.Version: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}
	})
}

// TestTransientInternalErrorOnReads: Terraform's provider retries
// InternalError on GetFunction (DescribeFunction, waitScfFunctionReady); the
// SDK lists InternalError and InternalError.System for GetFunction and
// GetFunctionAddress. One such answer to a read must not stop a deploy
// halfway; a write is not retried (it may have been done).
func TestTransientInternalErrorOnReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{CreateDelay: 100 * time.Millisecond})
		zipPath := deploytest.TinyZip(t, "")
		h.em.ErrorNext("GetFunction", "InternalError", "internal error", 1)
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatalf("first deploy with an InternalError on GetFunction: %v\n%s", err, h.out.String())
		}
		h.em.ErrorNext("GetFunction", "InternalError.System", "internal system error", 2)
		h.em.ErrorNext("GetFunctionAddress", "InternalError", "internal error", 1)
		h.em.ErrorNext("ListTriggers", "InternalError.System", "internal system error", 1)
		if _, err, calls := h.deploy("serverless.yml", zipPath, false); err != nil || len(writes(calls)) != 0 {
			t.Errorf("redeploy with InternalErrors on reads: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}
		h.env["LOG_LEVEL"] = "warn"
		h.em.ErrorNext("UpdateFunctionConfiguration", "InternalError", "internal error", 1)
		_, err, calls := h.deploy("serverless.yml", zipPath, false)
		if refused, done := countCalls(calls, "UpdateFunctionConfiguration"); err == nil || refused != 1 || done != 0 {
			t.Errorf("an InternalError on a write: %v, refused %d, done %d", err, refused, done)
		}
	})
}

// TestDryRunWhileUpdating: GetFunctionAddress may refuse a function being
// deployed with FailedOperation.FunctionStatusError (the SDK lists it for
// GetFunctionAddress: "函数在部署中,无法做此操作"). A dry run over a function
// that is Updating must still print a plan and write nothing.
func TestDryRunWhileUpdating(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		zipPath := deploytest.TinyZip(t, "")
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		h.em.Hold("", "carbroker-dev", scfemu.Updating, 300*time.Millisecond)
		h.out.Reset()
		_, err, calls := h.deploy("serverless.yml", deploytest.TinyZip(t, "changed"), true)
		if err != nil || len(writes(calls)) != 0 || !strings.Contains(h.out.String(), "~ code (sha256)") {
			t.Errorf("dry run while Updating: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}
	})
}

// TestRoleAndQuotaErrorsSayWhatToDo: CreateFunction answers a role that
// does not exist with ResourceNotFound.Role or FailedOperation.QcsRoleNotFound
// (both "角色不存在" in errors.go, both listed for CreateFunction), and a
// full account with LimitExceeded.Function / LimitExceeded.Trigger: the
// error names what to change.
func TestRoleAndQuotaErrorsSayWhatToDo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, c := range []struct{ action, code, want string }{
			{"CreateFunction", "ResourceNotFound.Role", "SCF_ROLE"},
			{"CreateFunction", "FailedOperation.QcsRoleNotFound", "SCF_ROLE"},
			{"CreateFunction", "LimitExceeded.Function", "quota"},
			{"CreateTrigger", "LimitExceeded.Trigger", "quota"},
			{"CreateFunction", "FailedOperation.InsufficientBalance", "top up"},
			{"CreateFunction", "FailedOperation.UnOpenedService", "activate it in the SCF console"},
		} {
			h := newHarness(t, scfemu.Options{})
			h.em.ErrorNext(c.action, c.code, "SCF's own words", 1)
			_, err, _ := h.deploy("serverless.yml", deploytest.TinyZip(t, ""), false)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "SCF's own words") {
				t.Errorf("%s: %v", c.code, err)
			}
		}
	})
}

// TestSecretQuotedEscapedInAnAPIError: an SCF error message may quote the
// request it refused, JSON-encoded; a base64 AUTH_SECRET (openssl rand
// -base64 48 gives / and +) may then appear with its / escaped as \/ (how
// the live API encodes is not documented). It must not reach the output.
func TestSecretQuotedEscapedInAnAPIError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		secret := "q8Zk/3Jx+Vb0Lw9a/Rt5Yp2Nc7Hm4Ds6Ef1Gi8Ku0Ow3Qy5Sz7Ua9Xb2Ye4Tf6R"
		h.env["AUTH_SECRET"] = secret
		escaped := strings.ReplaceAll(secret, "/", `\/`)
		h.em.ErrorNext("CreateFunction", "InvalidParameterValue.Environment", `Environment [{"Key":"AUTH_SECRET","Value":"`+escaped+`"}] is not valid`, 1)
		_, err, _ := h.deploy("serverless.yml", deploytest.TinyZip(t, ""), false)
		if err == nil {
			t.Fatal("the refused create succeeded")
		}
		for _, leak := range []string{secret, escaped, "q8Zk", "Tf6R"} {
			if strings.Contains(err.Error(), leak) || strings.Contains(h.out.String(), leak) {
				t.Errorf("the output shows the secret (%q): %v", leak, err)
			}
		}
	})
}

// TestDisabledFunctionURLIsReopened: a Function URL switched off in the
// console (ListTriggers' Enable 0, TriggerInfo.Enable in api.json) serves
// nothing. The file asks for a working URL, and the component toolkit
// sends Enable OPEN on every update of it (src/modules/triggers/http.ts):
// a deploy opens it again instead of planning no change.
func TestDisabledFunctionURLIsReopened(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		zipPath := deploytest.TinyZip(t, "")
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		before, _ := h.em.Function("", "carbroker-dev")
		if err := h.cl.UpdateTrigger(t.Context(), "", "carbroker-dev", Trigger{Name: DefaultURLTriggerName, Type: "http", Qualifier: "$DEFAULT",
			Desc: `{"AuthType":"NONE","NetConfig":{"EnableIntranet":false,"EnableExtranet":true}}`, Enable: "CLOSE"}); err != nil {
			t.Fatal(err)
		}
		h.out.Reset()
		res, err, calls := h.deploy("serverless.yml", zipPath, false)
		if err != nil || !slices.Equal(writes(calls), []string{"UpdateTrigger"}) {
			t.Errorf("deploy over a disabled Function URL: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}
		fn, _ := h.em.Function("", "carbroker-dev")
		if !fn.Triggers[0].Enable || urlOf(t, fn.Triggers[0].Desc) != urlOf(t, before.Triggers[0].Desc) || len(res.URLs) != 1 {
			t.Errorf("the Function URL after the deploy: %+v, URLs %v", fn.Triggers[0], res.URLs)
		}
	})
}

// TestRemoveRacingAnotherDeletion: the function (or its URL trigger) is
// deleted elsewhere while make remove runs; DeleteTrigger then answers
// ResourceNotFound.Trigger and DeleteFunction ResourceNotFound.Function
// (both listed for them in the SDK's client.go). Tencent's Terraform
// provider takes a not-found answer to DeleteFunction as done
// (services/scf/service_tencentcloud_scf.go, DeleteFunction): so does make
// remove, which wanted the function gone.
func TestRemoveRacingAnotherDeletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{DeleteDelay: time.Millisecond})
		em := h.em
		h.api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-TC-Action") == "DeleteTrigger" {
				// Someone else deletes the whole function first.
				em.Transition("", "carbroker-dev", scfemu.Deleting, 0, "")
			}
			em.ServeHTTP(w, r)
		})
		if _, err, _ := h.deploy("serverless.yml", deploytest.TinyZip(t, ""), false); err != nil {
			t.Fatal(err)
		}
		h.out.Reset()
		if err := h.remove(true); err != nil {
			t.Errorf("remove racing another deletion: %v\n%s", err, h.out.String())
		}
		if _, ok := em.Function("", "carbroker-dev"); ok {
			t.Error("the function is still there")
		}
	})
}

// TestRedisPasswordInTheQueryIsMasked: a password given as a query
// parameter (redis://host:6379/0?password=…, a form some Redis clients
// read) passes the function's configuration check (a redis URL with a
// host), and the plan printed the value as it is.
func TestRedisPasswordInTheQueryIsMasked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		h.env["QUEUE_REDIS_URL"] = "redis://10.0.0.5:6379/0?password=hunter2-query-secret&db=0"
		_, err, calls := h.deploy("serverless.yml", deploytest.TinyZip(t, ""), true)
		if len(writes(calls)) != 0 {
			t.Fatalf("a dry run wrote %v", writes(calls))
		}
		if strings.Contains(h.out.String(), "hunter2-query-secret") {
			t.Errorf("the output shows the password (%v):\n%s", err, h.out.String())
		}
	})
}

// TestEventItemsAreNotSilentlyDropped: an events item holding two event
// types (a dash forgotten: the timer indented under the http item) or
// none made the deploy keep one and drop the other without a word;
// docs/deploy.md promises that what make deploy cannot honour stops it,
// naming the line.
func TestEventItemsAreNotSilentlyDropped(t *testing.T) {
	for _, c := range []struct{ name, events, want string }{
		{"two types in one item", `
    - http:
        parameters:
          netConfig:
            enableExtranet: true
      timer:
        parameters:
          name: sweep
          cronExpression: '0 */1 * * * * *'
`, ":25: "},
		{"an empty item", `
    - http:
        parameters:
          netConfig:
            enableExtranet: true
    - timer:
`, ":25: "},
	} {
		body := minimal[:strings.Index(minimal, "  events:")] + "  events:" + c.events
		file := writeFile(t, t.TempDir(), "serverless.yml", body)
		s, err := Load(file, LoadOptions{Getenv: func(string) string { return "" }, DotenvDirs: []string{}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			var timers int
			if s != nil {
				timers = len(s.Timers)
			}
			t.Errorf("%s: %v (want an error naming line %s); %d timer(s) kept", c.name, err, c.want, timers)
		}
	}
}

// TestRefusedConfigurationWritesNothing: a code change plus a
// configuration SCF refuses (all variables together above 4 KB, a timeout
// above 900 s: CreateFunction's rules in api.json and SCF's quotas) updated
// the code first, then stopped on the refused configuration: new code with
// the old configuration. SCF's documented rules are checked before any write.
func TestRefusedConfigurationWritesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, c := range []struct {
			name string
			edit func(s *Spec)
			want string
		}{
			{"variables above 4 KB", func(s *Spec) {
				origins := strings.Repeat("https://app-0000000000.example.com,", 120)
				for i, v := range s.Variables {
					if v.Key == "CORS_ALLOW_ORIGINS" {
						s.Variables[i].Value = strings.TrimSuffix(origins, ",")
					}
				}
			}, "4 KB"},
			{"timeout above 900", func(s *Spec) { s.Timeout = 1000 }, "timeout"},
			{"memory off the steps", func(s *Spec) { s.MemorySize = 100 }, "memorySize"},
			{"reserved variable prefix", func(s *Spec) { s.Variables = append(s.Variables, Variable{"SCF_ROLE", "carbroker-car"}) }, "SCF_ROLE"},
		} {
			h := newHarness(t, scfemu.Options{})
			if _, err, _ := h.deploy("serverless.yml", deploytest.TinyZip(t, ""), false); err != nil {
				t.Fatal(err)
			}
			s := h.spec("serverless.yml")
			c.edit(s)
			before := len(h.em.Calls())
			_, err := Deploy(t.Context(), s, deploytest.TinyZip(t, "new code"), Options{Client: h.cl, Out: &h.out, Poll: 20 * time.Millisecond})
			if w := writes(h.em.Calls()[before:]); err == nil || !strings.Contains(err.Error(), c.want) || len(w) != 0 {
				t.Errorf("%s: %v, writes %v", c.name, err, w)
			}
		}
	})
}

// TestPlatformCORSIsSwitchedOff: CORS switched on for the Function URL in
// the console (TriggerDesc's CorsConfig, api.json's CreateTrigger and the
// reference's Function URL desc) adds a second Access-Control-Allow-Origin
// to the broker's own, which browsers refuse; docs/deploy.md says platform
// CORS stays off. A deploy planned no change and left it on.
func TestPlatformCORSIsSwitchedOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		zipPath := deploytest.TinyZip(t, "")
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		if err := h.cl.UpdateTrigger(t.Context(), "", "carbroker-dev", Trigger{Name: DefaultURLTriggerName, Type: "http", Qualifier: "$DEFAULT",
			Desc: `{"AuthType":"NONE","NetConfig":{"EnableIntranet":false,"EnableExtranet":true},"CorsConfig":{"Enable":true,"Origins":["*"]}}`}); err != nil {
			t.Fatal(err)
		}
		h.out.Reset()
		_, err, calls := h.deploy("serverless.yml", zipPath, false)
		if err != nil || !slices.Equal(writes(calls), []string{"UpdateTrigger"}) {
			t.Errorf("deploy over platform CORS: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}
		fn, _ := h.em.Function("", "carbroker-dev")
		if d, ok := parseURLDesc(fn.Triggers[0].Desc); !ok || strings.Contains(fn.Triggers[0].Desc, `"Enable":true`) {
			t.Errorf("the Function URL after the deploy: %s (%v)", fn.Triggers[0].Desc, d)
		}
		if _, err, calls := h.deploy("serverless.yml", zipPath, false); err != nil || len(writes(calls)) != 0 {
			t.Errorf("the next deploy: %v, writes %v", err, writes(calls))
		}
	})
}

// TestURLBoundToACustomDomain: DeleteTrigger refuses a Function URL a
// custom domain is bound to with FailedOperation.DeleteTrigger.UrlUsed
// ("Url被占用，无法删除", errors.go; TriggerInfo.BoundResources in api.json
// names such domains). make remove stops, and says what to unbind.
func TestURLBoundToACustomDomain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		if _, err, _ := h.deploy("serverless.yml", deploytest.TinyZip(t, ""), false); err != nil {
			t.Fatal(err)
		}
		h.em.ErrorNext("DeleteTrigger", "FailedOperation.DeleteTrigger.UrlUsed", "Url is in use", 1)
		err := h.remove(true)
		if err == nil || !strings.Contains(err.Error(), "custom domain") {
			t.Errorf("remove of a URL bound to a custom domain: %v", err)
		}
		if _, ok := h.em.Function("", "carbroker-dev"); !ok {
			t.Error("the function was deleted although its URL could not be")
		}
	})
}

// TestInterruptedDeployIsResumed: a deploy stopped after the function was
// created (here SCF's InternalError on its first trigger) is finished by
// the next run, which creates only what is missing.
func TestInterruptedDeployIsResumed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{CreateDelay: 50 * time.Millisecond})
		zipPath := deploytest.TinyZip(t, "")
		h.em.ErrorNext("CreateTrigger", "InternalError", "internal error", 1)
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err == nil {
			t.Fatal("the first deploy succeeded despite the refused trigger")
		}
		res, err, calls := h.deploy("serverless.yml", zipPath, false)
		if err != nil || !slices.Equal(writes(calls), []string{"CreateTrigger", "CreateTrigger"}) || len(res.URLs) != 1 {
			t.Errorf("the re-run: %v, writes %v, URLs %v", err, writes(calls), res.URLs)
		}
		if _, err, calls := h.deploy("serverless.yml", zipPath, false); err != nil || len(writes(calls)) != 0 {
			t.Errorf("the run after: %v, writes %v", err, writes(calls))
		}
	})
}
