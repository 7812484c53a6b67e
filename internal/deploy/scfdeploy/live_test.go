package scfdeploy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"carbroker/internal/deploy/deploytest"
	"carbroker/internal/deploy/scfemu"
)

// The tests in this file check what the live SCF API does and the
// emulator now models (issue 16): absent functions, every status,
// asynchronous deletion, busy writes, timers, URL adoption, the checks
// before any write and redaction of everything printed.

func (h *harness) remove(confirm bool) error {
	h.t.Helper()
	err := Remove(context.Background(), h.spec("serverless.yml"), confirm, Options{Client: h.cl, Out: &h.out, Poll: 20 * time.Millisecond, Wait: 30 * time.Second})
	if err != nil {
		h.out.WriteString(err.Error())
	}
	return err
}

func TestAbsentFunctionAndNamespace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		zipPath := deploytest.TinyZip(t, "")
		// GetFunction answers ResourceNotFound.FunctionName: deploy creates, remove has nothing to do.
		if err := h.remove(true); err != nil || !strings.Contains(h.out.String(), "nothing to remove") {
			t.Errorf("remove of an absent function: %v\n%s", err, h.out.String())
		}
		if _, err, calls := h.deploy("serverless.yml", zipPath, false); err != nil || len(writes(calls)) == 0 {
			t.Fatalf("deploy of an absent function: %v", err)
		}
		h.env["SCF_NAMESPACE"] = "games"
		_, err, calls := h.deploy("serverless.yml", zipPath, false)
		if err == nil || !strings.Contains(err.Error(), "the namespace games does not exist") || len(writes(calls)) != 0 {
			t.Errorf("absent namespace: %v, writes %v", err, writes(calls))
		}
		h.em.AddNamespace("games")
		if _, err, calls := h.deploy("serverless.yml", zipPath, false); err != nil || writes(calls)[0] != "CreateFunction" {
			t.Errorf("existing namespace: %v, writes %v", err, writes(calls))
		}
	})
}

// TestFailedStatusesEndTheWait: each *Failed status stops the deploy or the
// remove at once, with SCF's StatusReasons, redacted.
func TestFailedStatusesEndTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		zipPath := deploytest.TinyZip(t, "")
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		leak := scfemu.StatusReason{ErrorCode: "InternalError", ErrorMessage: "variable AUTH_SECRET=" + deploytest.Secrets[0] + " and redis://broker:" + deploytest.Secrets[2] + "@10.0.0.5 refused"}
		for _, end := range []string{scfemu.PublishFailed, scfemu.UpdateFailed} {
			h.out.Reset()
			h.em.Transition("", "carbroker-dev", scfemu.Publishing, 100*time.Millisecond, end, leak)
			h.env["LOG_LEVEL"] = map[string]string{scfemu.PublishFailed: "warn", scfemu.UpdateFailed: "error"}[end]
			start := time.Now()
			_, err, calls := h.deploy("serverless.yml", zipPath, false)
			if err == nil || !strings.Contains(err.Error(), "is "+end) || !strings.Contains(err.Error(), "refused") || time.Since(start) > 10*time.Second {
				t.Errorf("%s: %v after %s\n%s", end, err, time.Since(start), h.out.String())
			}
			if len(writes(calls)) != 0 {
				t.Errorf("%s: wrote %v", end, writes(calls))
			}
			h.em.Hold("", "carbroker-dev", scfemu.Active, 0)
		}
		// UpdateFailed at the start: the deploy retries, and prints the reasons.
		h.out.Reset()
		h.em.Transition("", "carbroker-dev", scfemu.UpdateFailed, 0, scfemu.UpdateFailed, leak)
		h.env["LOG_LEVEL"] = "debug"
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil || !strings.Contains(h.out.String(), "the last update of carbroker-dev failed") {
			t.Errorf("deploy over UpdateFailed: %v\n%s", err, h.out.String())
		}
		// DeleteFailed ends make remove with the reasons.
		h.out.Reset()
		h.em.FailNext(leak)
		if err := h.remove(true); err == nil || !strings.Contains(err.Error(), "DeleteFailed") || !strings.Contains(err.Error(), "make remove CONFIRM=1 again") {
			t.Errorf("failed deletion: %v", err)
		}
		h.noSecrets()
	})
}

// TestDeployRightAfterRemove: deletion is asynchronous; make remove waits
// until the function is gone, and a deploy that finds it Deleting waits it
// out and creates it afresh.
func TestDeployRightAfterRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{DeleteDelay: 300 * time.Millisecond})
		zipPath := deploytest.TinyZip(t, "")
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		if err := h.remove(true); err != nil || !strings.Contains(h.out.String(), "Deleting, waiting for the function to be gone") || !strings.Contains(h.out.String(), "removed carbroker-dev") {
			t.Fatalf("remove: %v\n%s", err, h.out.String())
		}
		if _, ok := h.em.Function("", "carbroker-dev"); ok {
			t.Fatal("make remove returned before the function was gone")
		}
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		// A deletion still under way (started elsewhere) when the deploy begins.
		if err := h.cl.DeleteFunction(context.Background(), "", "carbroker-dev"); err != nil {
			t.Fatal(err)
		}
		h.out.Reset()
		_, err, calls := h.deploy("serverless.yml", zipPath, false)
		if err != nil || !slices.Equal(writes(calls), []string{"CreateFunction", "CreateTrigger", "CreateTrigger"}) || !strings.Contains(h.out.String(), "being deleted") {
			t.Errorf("deploy right after a remove: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}
		if fn, ok := h.em.Function("", "carbroker-dev"); !ok || fn.Status != scfemu.Active {
			t.Errorf("function %+v", fn)
		}
	})
}

// TestBusyWriteIsRetriedOnce: a change made elsewhere starts between the
// deployer's look and its write; SCF refuses the write; the deployer waits
// and retries once.
func TestBusyWriteIsRetriedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		zipPath := deploytest.TinyZip(t, "")
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		h.em.BusyNext("UpdateFunctionConfiguration", 200*time.Millisecond)
		h.env["LOG_LEVEL"] = "warn"
		_, err, calls := h.deploy("serverless.yml", zipPath, false)
		var refused, done int
		for _, c := range calls {
			if c.Action == "UpdateFunctionConfiguration" {
				if c.Code != "" {
					refused++
				} else {
					done++
				}
			}
		}
		if err != nil || refused != 1 || done != 1 || !strings.Contains(h.out.String(), "trying once more") {
			t.Errorf("busy write: %v, refused %d, done %d\n%s", err, refused, done, h.out.String())
		}
	})
}

// TestTimerTriggerIsIdempotent: the API reads a timer back as {"cron":…}
// and Enable 1; an unchanged deploy rewrites nothing, a changed timer is
// updated in place.
func TestTimerTriggerIsIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		zipPath := deploytest.TinyZip(t, "")
		if _, err, _ := h.deploy("serverless.yml", zipPath, false); err != nil {
			t.Fatal(err)
		}
		if _, err, calls := h.deploy("serverless.yml", zipPath, false); err != nil || len(writes(calls)) != 0 {
			t.Errorf("unchanged: %v, writes %v", err, writes(calls))
		}
		// Someone changed the timer in the console.
		if err := h.cl.UpdateTrigger(context.Background(), "", "carbroker-dev", Trigger{Name: "sweep", Type: "timer", Qualifier: "$DEFAULT", Desc: "0 */5 * * * * *", Enable: "CLOSE"}); err != nil {
			t.Fatal(err)
		}
		h.out.Reset()
		_, err, calls := h.deploy("serverless.yml", zipPath, false)
		if err != nil || !slices.Equal(writes(calls), []string{"UpdateTrigger"}) || !strings.Contains(h.out.String(), "~ timer sweep: cron '0 */1 * * * * *', enable true") {
			t.Errorf("changed timer: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}
		fn, _ := h.em.Function("", "carbroker-dev")
		if tr := fn.Triggers[1]; tr.Desc != `{"cron":"0 */1 * * * * *"}` || !tr.Enable {
			t.Errorf("timer %+v", tr)
		}
	})
}

// TestExistingURLTriggerIsAdopted: a Function URL made under another name
// (make deploy's earlier function-url) is kept, never deleted and recreated:
// recreating changes the URL.
func TestExistingURLTriggerIsAdopted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		zipPath := deploytest.TinyZip(t, "")
		s := h.spec("serverless.yml")
		s.URL.Name = "function-url"
		if _, err := Deploy(context.Background(), s, zipPath, Options{Client: h.cl, Out: &h.out, Poll: 20 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		before, _ := h.em.Function("", "carbroker-dev")
		h.out.Reset()
		res, err, calls := h.deploy("serverless.yml", zipPath, false)
		if err != nil || len(writes(calls)) != 0 || !strings.Contains(h.out.String(), "keeps its name") {
			t.Errorf("adopt: %v, writes %v\n%s", err, writes(calls), h.out.String())
		}
		if want := urlOf(t, before.Triggers[0].Desc); !slices.Equal(res.URLs, []string{want}) {
			t.Errorf("URL %v, want the existing %s", res.URLs, want)
		}
		// parameters.name is honoured for a new trigger.
		h2 := newHarness(t, scfemu.Options{})
		s = h2.spec("serverless.yml")
		s.URL.Name = "my-url"
		if _, err := Deploy(context.Background(), s, zipPath, Options{Client: h2.cl, Out: &h2.out, Poll: 20 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		if fn, _ := h2.em.Function("", "carbroker-dev"); fn.Triggers[0].Name != "my-url" {
			t.Errorf("triggers %+v", fn.Triggers)
		}
	})
}

// TestChecksBeforeAnyWrite: the function's own configuration check and the
// execution role, before any API call, with the binary's messages.
func TestChecksBeforeAnyWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		zipPath := deploytest.TinyZip(t, "")
		for _, c := range []struct {
			name, key, value, want string
		}{
			{"auth mode typo", "AUTH_MODE", "tiket", "AUTH_MODE must be one of none, ticket, jwt, sign"},
			{"project id", "CAR_PROJECT_ID", "1300012345", "CAR_PROJECT_ID is not a CAR project id"},
			{"no project", "CAR_PROJECT_ID", "", "CAR_PROJECT_ID is required"},
			{"no auth mode", "AUTH_MODE", "", "AUTH_MODE is required"},
			{"no role", "SCF_ROLE", "", "SCF_ROLE (the file's role) is not set"},
			{"placeholder secret", "AUTH_SECRET", "replace-with-the-output-of-openssl-rand-base64-48", "openssl rand -base64 48"},
		} {
			h := newHarness(t, scfemu.Options{})
			h.env[c.key] = c.value
			_, err, calls := h.deploy("serverless.yml", zipPath, true)
			if err == nil || !strings.Contains(err.Error(), c.want) || len(calls) != 0 {
				t.Errorf("%s: %v, %d calls", c.name, err, len(calls))
			}
			if err != nil && strings.Contains(err.Error(), "replace-with") {
				t.Errorf("%s: the error shows the secret: %v", c.name, err)
			}
		}
	})
}

func TestPermissionMessagesOnlyForPermissions(t *testing.T) {
	for _, c := range []struct {
		code, want, notWant string
	}{
		{"UnauthorizedOperation.CAM", "missing permission scf:CreateTrigger", ""},
		{"UnauthorizedOperation.CreateTrigger", "missing permission scf:CreateTrigger", ""},
		{"UnauthorizedOperation.DeleteTrigger", "missing permission scf:CreateTrigger", ""},
		{"UnauthorizedOperation.Role", "COS", "missing permission"},
		{"UnauthorizedOperation.Region", "TENCENT_REGION", "missing permission"},
		{"UnauthorizedOperation.UpdateFunctionCode", "wait until it is Active", "missing permission"},
		{"UnauthorizedOperation.NotMC", "SCF console", "missing permission"},
		{"UnauthorizedOperation.CodeSecret", "code package", "missing permission"},
		{"UnauthorizedOperation.TempCosAppid", "account", "missing permission"},
		{"UnauthorizedOperation", "its message above says why", "missing permission"},
	} {
		err := explain(&APIError{Action: "CreateTrigger", Code: c.code, Message: "SCF's own words", RequestID: "r"})
		got := err.Error()
		if !strings.Contains(got, c.want) || (c.notWant != "" && strings.Contains(got, c.notWant)) || !strings.Contains(got, "SCF's own words") {
			t.Errorf("%s: %q", c.code, got)
		}
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Errorf("%s: the API error is not kept", c.code)
		}
	}
}

// TestLiveQuirks: answers the emulator does not give but the live API may:
// CreateFunction refusing a name whose deletion is ending although
// GetFunction already says absent, and a CreateTrigger answer without the
// URL. The deploy waits for the name, and finds the URL by listing.
func TestLiveQuirks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		em := h.em
		var refused atomic.Int32
		h.api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Header.Get("X-TC-Action") {
			case "CreateFunction":
				if refused.Add(1) <= 2 {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"Response":{"Error":{"Code":"ResourceInUse.Function","Message":"Function already exists"},"RequestId":"q1"}}`))
					return
				}
			case "CreateTrigger":
				rec := httptest.NewRecorder()
				em.ServeHTTP(rec, r)
				var body map[string]map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err == nil && body["Response"]["TriggerInfo"] != nil {
					body["Response"]["TriggerInfo"] = map[string]any{"TriggerName": "x"}
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(body)
				return
			}
			em.ServeHTTP(w, r)
		})
		res, err, _ := h.deploy("serverless.yml", deploytest.TinyZip(t, ""), false)
		if err != nil || refused.Load() != 3 || !strings.Contains(h.out.String(), "SCF still holds the name") {
			t.Fatalf("create while the name is held: %v, %d creates\n%s", err, refused.Load(), h.out.String())
		}
		fn, _ := em.Function("", "carbroker-dev")
		if len(res.URLs) != 1 || res.URLs[0] != urlOf(t, fn.Triggers[0].Desc) {
			t.Errorf("URLs %v, triggers %+v", res.URLs, fn.Triggers)
		}
	})
}

// TestRedisPasswordNeverShown: a QUEUE_REDIS_URL whose password holds an
// unescaped /, ? or # (which a URL parser splits elsewhere) never reaches
// the output, whatever stops the deploy.
func TestRedisPasswordNeverShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		h.env["QUEUE_REDIS_URL"] = "redis://broker:pa/ss?wo#rd@10.0.0.5:6379/0"
		// The function reads it as the URL it is (the credentials end at the
		// last @), so the deploy goes through; the plan and every line shown
		// mask the password whole.
		if _, err, _ := h.deploy("serverless.yml", deploytest.TinyZip(t, ""), false); err != nil {
			t.Errorf("deploy: %v", err)
		}
		if !strings.Contains(h.out.String(), "QUEUE_REDIS_URL") {
			t.Errorf("the plan does not list QUEUE_REDIS_URL:\n%s", h.out.String())
		}
		for _, part := range []string{"pa/ss", "wo#rd", "ss?wo"} {
			if strings.Contains(h.out.String(), part) {
				t.Errorf("the output shows %q:\n%s", part, h.out.String())
			}
		}
		if got := Masked("QUEUE_REDIS_URL", h.env["QUEUE_REDIS_URL"]); got != "redis://broker:<secret>@10.0.0.5:6379/0" {
			t.Errorf("the plan would show %s", got)
		}
	})
}
