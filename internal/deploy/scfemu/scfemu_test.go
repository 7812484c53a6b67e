package scfemu_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

	"carbroker/internal/deploy/deploytest"
	"carbroker/internal/deploy/scfemu"
)

// client sends actions to an emulator, signed by the SDK, through its
// in-process transport: no socket, so a test may run in a synctest bubble
// (cmd/deploy's tests reach the emulator over 127.0.0.1).
type client struct {
	t       *testing.T
	em      *scfemu.Emulator
	sdk     *common.Client
	profile *profile.ClientProfile
}

func start(t *testing.T, opt scfemu.Options) (*scfemu.Emulator, *client) {
	t.Helper()
	em := scfemu.New(opt)
	p := profile.NewClientProfile()
	p.HttpProfile.Endpoint = "127.0.0.1:1" // never dialled
	p.HttpProfile.Scheme = "HTTP"
	p.RateLimitExceededMaxRetries = 0
	c := &client{t: t, em: em, profile: p}
	c.sdk = c.newSDK(scfemu.DefaultSecretKey, "ap-guangzhou")
	return em, c
}

// newSDK returns an SDK client of the emulator's account with key, in region.
func (c *client) newSDK(key, region string) *common.Client {
	sdk := common.NewCommonClient(common.NewCredential(scfemu.DefaultSecretID, key), region, c.profile)
	sdk.WithHttpTransport(c.em.Transport())
	return sdk
}

// do sends action and returns the Response object, or the error code.
func (c *client) do(action string, params map[string]any) (map[string]any, string) {
	c.t.Helper()
	req := tchttp.NewCommonRequest("scf", scfemu.Version, action)
	if err := req.SetActionParameters(params); err != nil {
		c.t.Fatal(err)
	}
	resp := tchttp.NewCommonResponse()
	err := c.sdk.Send(req, resp)
	var sdkErr *tcerr.TencentCloudSDKError
	if errors.As(err, &sdkErr) {
		return nil, sdkErr.Code
	} else if err != nil {
		c.t.Fatalf("%s: %v", action, err)
	}
	var out struct{ Response map[string]any }
	if err := json.Unmarshal(resp.GetBody(), &out); err != nil {
		c.t.Fatal(err)
	}
	return out.Response, ""
}

func (c *client) ok(action string, params map[string]any) map[string]any {
	c.t.Helper()
	r, code := c.do(action, params)
	if code != "" {
		c.t.Fatalf("%s: %s", action, code)
	}
	return r
}

type entry struct {
	name string
	mode uint32
	data []byte
}

func zipOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(fsMode(e.mode))
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var goodZip = func(t *testing.T) []byte {
	return zipOf(t, entry{"main", 0o755, deploytest.ELFHeader(62)}, entry{"scf_bootstrap", 0o755, []byte("#!/bin/bash\n")})
}

func create(name string, zipData []byte, extra map[string]any) map[string]any {
	p := map[string]any{"FunctionName": name, "Runtime": "Go1", "Handler": "main",
		"Code": map[string]any{"ZipFile": base64.StdEncoding.EncodeToString(zipData)}}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

func TestLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		em, c := start(t, scfemu.Options{CreateDelay: 300 * time.Millisecond, UpdateDelay: 300 * time.Millisecond})
		if _, code := c.do("GetFunction", map[string]any{"FunctionName": "fn-1"}); code != "ResourceNotFound.FunctionName" {
			t.Fatalf("absent: %q, want the live API's ResourceNotFound.FunctionName", code)
		}
		z := goodZip(t)
		c.ok("CreateFunction", create("fn-1", z, map[string]any{"MemorySize": 64, "Timeout": 15,
			"Environment": map[string]any{"Variables": []map[string]string{{"Key": "A", "Value": "1"}}}}))
		if _, code := c.do("CreateFunction", create("fn-1", z, nil)); code != "ResourceInUse.Function" {
			t.Errorf("second create: %q", code)
		}
		if got := c.ok("GetFunction", map[string]any{"FunctionName": "fn-1"})["Status"]; got != scfemu.Creating {
			t.Errorf("status %v, want Creating", got)
		}
		if _, code := c.do("UpdateFunctionCode", map[string]any{"FunctionName": "fn-1", "ZipFile": base64.StdEncoding.EncodeToString(z)}); code != "FailedOperation.UpdateFunctionCode" {
			t.Errorf("update while Creating: %q", code)
		}
		if _, code := c.do("CreateTrigger", map[string]any{"FunctionName": "fn-1", "TriggerName": "url", "Type": "http", "TriggerDesc": `{"AuthType":"NONE"}`}); code != "FailedOperation.CreateTrigger" {
			t.Errorf("trigger while Creating: %q", code)
		}
		time.Sleep(300 * time.Millisecond) // the delay is a lower bound: Active from then on
		fn := c.ok("GetFunction", map[string]any{"FunctionName": "fn-1"})
		if fn["Status"] != scfemu.Active || fn["MemorySize"] != 64.0 || fn["Timeout"] != 15.0 || fn["InitTimeout"] != 65.0 || fn["Type"] != "Event" {
			t.Errorf("after the delay: %v", fn)
		}
		sum := sha256.Sum256(z)
		if got := c.ok("GetFunctionAddress", map[string]any{"FunctionName": "fn-1"})["CodeSha256"]; got != hex.EncodeToString(sum[:]) {
			t.Errorf("CodeSha256 %v", got)
		}

		c.ok("UpdateFunctionConfiguration", map[string]any{"FunctionName": "fn-1", "MemorySize": 128})
		if _, code := c.do("UpdateFunctionConfiguration", map[string]any{"FunctionName": "fn-1", "Timeout": 20}); code != "FailedOperation.UpdateFunctionConfiguration" {
			t.Errorf("update while Updating: %q", code)
		}
		time.Sleep(300 * time.Millisecond)
		got, _ := em.Function("", "fn-1")
		if got.Status != scfemu.Active || got.MemorySize != 128 || len(got.Variables) != 1 {
			t.Errorf("after the update: %+v", got)
		}

		info := c.ok("CreateTrigger", map[string]any{"FunctionName": "fn-1", "TriggerName": "url", "Type": "http", "Qualifier": "$DEFAULT",
			"TriggerDesc": `{"AuthType":"NONE","NetConfig":{"EnableIntranet":false,"EnableExtranet":true}}`})["TriggerInfo"].(map[string]any)
		urlHost := regexp.MustCompile(`"ExtranetUrl":"https://1250000000-([a-z0-9]{10})\.ap-guangzhou\.tencentscf\.com"`)
		m := urlHost.FindStringSubmatch(info["TriggerDesc"].(string))
		if m == nil || m[1] == "url" {
			t.Fatalf("TriggerDesc %v: want a host from a generated url-id", info["TriggerDesc"])
		}
		urlID := m[1]
		if _, code := c.do("CreateTrigger", map[string]any{"FunctionName": "fn-1", "TriggerName": "url2", "Type": "http", "Qualifier": "$DEFAULT", "TriggerDesc": `{"AuthType":"NONE"}`}); code != "ResourceInUse.Trigger" {
			t.Errorf("second URL: %q", code)
		}
		if _, code := c.do("CreateTrigger", map[string]any{"FunctionName": "fn-1", "TriggerName": "gw", "Type": "apigw", "TriggerDesc": `{}`}); code != "UnsupportedOperation.Trigger" {
			t.Errorf("apigw: %q", code)
		}
		c.ok("UpdateTrigger", map[string]any{"FunctionName": "fn-1", "TriggerName": "url", "Type": "http", "Qualifier": "$DEFAULT",
			"TriggerDesc": `{"AuthType":"NONE","NetConfig":{"EnableIntranet":true,"EnableExtranet":true}}`})
		list := c.ok("ListTriggers", map[string]any{"FunctionName": "fn-1"})
		trs := list["Triggers"].([]any)
		if len(trs) != 1 || !strings.Contains(trs[0].(map[string]any)["TriggerDesc"].(string), `"IntranetUrl":"https://1250000000-`+urlID+`.in.ap-guangzhou.tencentscf.com"`) || trs[0].(map[string]any)["Enable"] != 1.0 {
			t.Errorf("ListTriggers %v", list)
		}
		c.ok("DeleteTrigger", map[string]any{"FunctionName": "fn-1", "TriggerName": "url", "Type": "http", "Qualifier": "$DEFAULT"})
		c.ok("DeleteFunction", map[string]any{"FunctionName": "fn-1"})
		if got := c.ok("GetFunction", map[string]any{"FunctionName": "fn-1"})["Status"]; got != scfemu.Deleting {
			t.Errorf("right after DeleteFunction: %v, want Deleting (deletion is asynchronous)", got)
		}
		if _, code := c.do("CreateFunction", create("fn-1", z, nil)); code != "ResourceInUse.Function" {
			t.Errorf("create while Deleting: %q", code)
		}
		time.Sleep(150 * time.Millisecond) // DeleteDelay's default, 100ms
		if _, code := c.do("GetFunctionAddress", map[string]any{"FunctionName": "fn-1"}); code != "ResourceNotFound.FunctionName" {
			t.Errorf("after delete: %q", code)
		}

		writes := 0
		for _, call := range em.Calls() {
			if call.Write() && call.Code == "" {
				writes++
			}
			if z, ok := call.Params["Code"].(map[string]any); ok {
				if _, isLen := z["ZipFile"].(int); !isLen {
					t.Errorf("the recorded call keeps the zip: %T", z["ZipFile"])
				}
			}
		}
		if writes != 6 {
			t.Errorf("%d successful writes recorded, want 6", writes)
		}
	})
}

func TestParameterRules(t *testing.T) {
	_, c := start(t, scfemu.Options{})
	z := goodZip(t)
	vars := func(k, v string) map[string]any {
		return map[string]any{"Environment": map[string]any{"Variables": []map[string]string{{"Key": k, "Value": v}}}}
	}
	for _, tc := range []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"memory 64", create("m64", z, map[string]any{"MemorySize": 64}), ""},
		{"memory 3072", create("m3072", z, map[string]any{"MemorySize": 3072}), ""},
		{"memory 100", create("m100", z, map[string]any{"MemorySize": 100}), "InvalidParameterValue.MemorySize"},
		{"memory 3200", create("m3200", z, map[string]any{"MemorySize": 3200}), "InvalidParameterValue.MemorySize"},
		{"timeout 0", create("t0", z, map[string]any{"Timeout": 0}), "InvalidParameterValue"},
		{"timeout 901", create("t901", z, map[string]any{"Timeout": 901}), "InvalidParameterValue"},
		{"timeout 900", create("t900", z, map[string]any{"Timeout": 900}), ""},
		{"empty value", create("ev", z, vars("A", "")), "InvalidParameterValue.Environment"},
		{"reserved prefix", create("rp", z, vars("SCF_X", "1")), "InvalidParameterValue.EnvironmentSystemProtect"},
		{"bad key", create("bk", z, vars("1A", "1")), "InvalidParameterValue.Environment"},
		{"big variables", create("bv", z, vars("A", strings.Repeat("x", 4097))), "InvalidParameterValue.EnvironmentExceededLimit"},
		{"description", create("de", z, map[string]any{"Description": "CAR broker (carbroker)"}), "InvalidParameterValue.Description"},
		{"description ok", create("do", z, map[string]any{"Description": "CAR session broker, carbroker.\nv1"}), ""},
		{"name", create("9fn", z, nil), "InvalidParameterValue.FunctionName"},
		{"name ends with -", create("fn-", z, nil), "InvalidParameterValue.FunctionName"},
		{"type", create("ty", z, map[string]any{"Type": "Web"}), "InvalidParameterValue.Type"},
		{"no code", map[string]any{"FunctionName": "nc", "Runtime": "Go1", "Handler": "main"}, "MissingParameter"},
		{"cos code", create("cc", z, map[string]any{"Code": map[string]any{"CosBucketName": "b", "CosObjectName": "/o.zip"}}), "InvalidParameterValue.Code"},
		{"not base64", create("nb", z, map[string]any{"Code": map[string]any{"ZipFile": "%%%"}}), "InvalidParameterValue.ZipFileBase64BinasciiError"},
		{"not zip", create("nz", z, map[string]any{"Code": map[string]any{"ZipFile": base64.StdEncoding.EncodeToString([]byte("hello"))}}), "InvalidParameterValue.ZipFile"},
		{"unknown parameter", create("up", z, map[string]any{"Memory": 64}), "UnknownParameter"},
		{"wrong type", create("wt", z, map[string]any{"MemorySize": "64"}), "InvalidParameter"},
		{"body over 10 MB", create("big", z, map[string]any{"Description": strings.Repeat("a", 10<<20)}), "RequestSizeLimitExceeded"},
	} {
		if _, code := c.do("CreateFunction", tc.params); code != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, code, tc.want)
		}
	}
	if _, code := c.do("UpdateFunctionConfiguration", map[string]any{"FunctionName": "m64", "Runtime": "Python3.9"}); code != "InvalidParameterValue.Runtime" {
		t.Errorf("runtime change: %q", code)
	}
}

func TestPackageCheckAndFailures(t *testing.T) {
	em, c := start(t, scfemu.Options{})
	for _, tc := range []struct {
		name, typ string
		zip       []byte
		reason    string
	}{
		{"arm", "Event", zipOf(t, entry{"main", 0o755, deploytest.ELFHeader(183)}), "HandlerNotLinuxAmd64"},
		{"script", "Event", zipOf(t, entry{"main", 0o755, []byte("#!/bin/sh\n")}), "HandlerNotLinuxAmd64"},
		{"noexec", "Event", zipOf(t, entry{"main", 0o644, deploytest.ELFHeader(62)}), "HandlerNotExecutable"},
		{"nomain", "Event", zipOf(t, entry{"other", 0o755, deploytest.ELFHeader(62)}), "HandlerNotFound"},
		{"web-0644", "HTTP", zipOf(t, entry{"main", 0o755, deploytest.ELFHeader(62)}, entry{"scf_bootstrap", 0o644, []byte("#!/bin/bash\n")}), "BootstrapNotExecutable"},
		{"web-none", "HTTP", zipOf(t, entry{"main", 0o755, deploytest.ELFHeader(62)}), "BootstrapNotFound"},
		{"web-ok", "HTTP", goodZip(t), ""},
	} {
		c.ok("CreateFunction", create(tc.name, tc.zip, map[string]any{"Type": tc.typ}))
		fn, _ := em.Function("", tc.name)
		switch {
		case tc.reason == "" && fn.Status != scfemu.Active:
			t.Errorf("%s: %s %v", tc.name, fn.Status, fn.Reasons)
		case tc.reason != "" && (fn.Status != scfemu.CreateFailed || len(fn.Reasons) == 0 || fn.Reasons[0].ErrorCode != tc.reason):
			t.Errorf("%s: %s %v, want CreateFailed %s", tc.name, fn.Status, fn.Reasons, tc.reason)
		}
	}
	if _, code := c.do("UpdateFunctionConfiguration", map[string]any{"FunctionName": "arm", "Timeout": 5}); code != "FailedOperation.UpdateFunctionConfiguration" {
		t.Errorf("update of a CreateFailed function: %q", code)
	}

	em.FailNext(scfemu.StatusReason{ErrorCode: "InternalError", ErrorMessage: "disk full"})
	c.ok("UpdateFunctionConfiguration", map[string]any{"FunctionName": "web-ok", "Timeout": 5})
	if fn, _ := em.Function("", "web-ok"); fn.Status != scfemu.UpdateFailed || fn.Reasons[0].ErrorMessage != "disk full" {
		t.Errorf("FailNext: %+v", fn)
	}
	c.ok("UpdateFunctionConfiguration", map[string]any{"FunctionName": "web-ok", "Timeout": 6}) // a retry is allowed
	if fn, _ := em.Function("", "web-ok"); fn.Status != scfemu.Active || fn.Timeout != 6 {
		t.Errorf("retry: %+v", fn)
	}

	em.Hold("", "web-ok", scfemu.Updating, time.Hour)
	if _, code := c.do("UpdateFunctionCode", map[string]any{"FunctionName": "web-ok", "ZipFile": base64.StdEncoding.EncodeToString(goodZip(t))}); code != "FailedOperation.UpdateFunctionCode" {
		t.Errorf("update while held: %q", code)
	}
}

func TestPermissionsAndThrottling(t *testing.T) {
	em, c := start(t, scfemu.Options{Base64Sha256: true})
	z := goodZip(t)
	em.Deny("cam:PassRole", true)
	req := create("fn", z, map[string]any{"Role": "carbroker-role"})
	if _, code := c.do("CreateFunction", req); code != "UnauthorizedOperation.CAM" {
		t.Errorf("PassRole denied: %q", code)
	}
	em.Deny("cam:PassRole", false)
	em.Deny("scf:CreateFunction", true)
	if _, code := c.do("CreateFunction", req); code != "UnauthorizedOperation.CAM" {
		t.Errorf("scf:CreateFunction denied: %q", code)
	}
	em.Deny("scf:CreateFunction", false)
	c.ok("CreateFunction", req)
	sum := sha256.Sum256(z)
	if got := c.ok("GetFunctionAddress", map[string]any{"FunctionName": "fn"})["CodeSha256"]; got != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("base64 CodeSha256 %v", got)
	}
	em.Throttle("GetFunction", 2)
	for i, want := range []string{"RequestLimitExceeded", "RequestLimitExceeded", ""} {
		if _, code := c.do("GetFunction", map[string]any{"FunctionName": "fn"}); code != want {
			t.Errorf("call %d: %q, want %q", i, code, want)
		}
	}
	calls := em.Calls()
	if last := calls[len(calls)-1]; last.Region != "ap-guangzhou" || last.Write() {
		t.Errorf("last call %+v", last)
	}
}

func fsMode(m uint32) fs.FileMode { return fs.FileMode(m) }

func TestEnvelopeChecks(t *testing.T) {
	em, c := start(t, scfemu.Options{})
	send := func(sdk *common.Client, version, action string) string {
		req := tchttp.NewCommonRequest("scf", version, action)
		_ = req.SetActionParameters(map[string]any{"FunctionName": "fn"})
		err := sdk.Send(req, tchttp.NewCommonResponse())
		var sdkErr *tcerr.TencentCloudSDKError
		if errors.As(err, &sdkErr) {
			return sdkErr.Code
		}
		return ""
	}
	if got := send(c.sdk, "2017-01-01", "GetFunction"); got != "NoSuchVersion" {
		t.Errorf("other version: %q", got)
	}
	if got := send(c.sdk, scfemu.Version, "ListFunctions"); got != "InvalidAction" {
		t.Errorf("unmodelled action: %q", got)
	}
	noRegion := c.newSDK(scfemu.DefaultSecretKey, "")
	if got := send(noRegion, scfemu.Version, "GetFunction"); got != "MissingParameter" {
		t.Errorf("no region: %q", got)
	}
	wrongKey := c.newSDK("wrong", "ap-guangzhou")
	if got := send(wrongKey, scfemu.Version, "GetFunction"); got != "AuthFailure.SignatureFailure" {
		t.Errorf("wrong key: %q", got)
	}
	for _, call := range em.Calls() {
		if call.RequestID == "" || call.Code == "" {
			t.Errorf("call %+v: every answer here is an error with a RequestId", call)
		}
	}
}

// TestAllNineStatuses reaches every status SCF documents, and checks what
// each lets through: writes wait for Active, a failed create accepts only a
// deletion, a failed update or publish accepts a function update (a retry),
// a failed deletion accepts another deletion.
func TestAllNineStatuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		em, c := start(t, scfemu.Options{CreateDelay: 100 * time.Millisecond, DeleteDelay: 100 * time.Millisecond})
		z := goodZip(t)
		status := func(name string) string {
			fn, ok := em.Function("", name)
			if !ok {
				return "absent"
			}
			return fn.Status
		}
		seen := map[string]bool{}
		see := func(name, want string) {
			t.Helper()
			if got := status(name); got != want {
				t.Fatalf("%s: %s, want %s", name, got, want)
			}
			seen[want] = true
		}
		reason := scfemu.StatusReason{ErrorCode: "InternalError", ErrorMessage: "AUTH_SECRET=hunter2 was refused"}

		c.ok("CreateFunction", create("fn", z, nil))
		see("fn", scfemu.Creating)
		time.Sleep(100 * time.Millisecond)
		see("fn", scfemu.Active)

		em.FailNext(reason)
		c.ok("CreateFunction", create("bad", z, nil))
		time.Sleep(100 * time.Millisecond)
		see("bad", scfemu.CreateFailed)
		if _, code := c.do("UpdateFunctionCode", map[string]any{"FunctionName": "bad", "ZipFile": base64.StdEncoding.EncodeToString(z)}); code != "FailedOperation.UpdateFunctionCode" {
			t.Errorf("update of a CreateFailed function: %q", code)
		}
		got := c.ok("GetFunction", map[string]any{"FunctionName": "bad"})
		if rs, _ := got["StatusReasons"].([]any); len(rs) != 1 || rs[0].(map[string]any)["ErrorMessage"] != reason.ErrorMessage {
			t.Errorf("StatusReasons %v", got["StatusReasons"])
		}

		em.Transition("", "fn", scfemu.Updating, 50*time.Millisecond, scfemu.UpdateFailed, reason)
		see("fn", scfemu.Updating)
		time.Sleep(50 * time.Millisecond)
		see("fn", scfemu.UpdateFailed)
		c.ok("UpdateFunctionConfiguration", map[string]any{"FunctionName": "fn", "Timeout": 5})
		see("fn", scfemu.Active)

		em.Transition("", "fn", scfemu.Publishing, 50*time.Millisecond, scfemu.PublishFailed, reason)
		see("fn", scfemu.Publishing)
		if _, code := c.do("DeleteFunction", map[string]any{"FunctionName": "fn"}); code != "FailedOperation.DeleteFunction" {
			t.Errorf("delete while Publishing: %q", code)
		}
		time.Sleep(50 * time.Millisecond)
		see("fn", scfemu.PublishFailed)
		c.ok("UpdateFunctionConfiguration", map[string]any{"FunctionName": "fn", "Timeout": 6})
		see("fn", scfemu.Active)

		em.FailNext(reason)
		c.ok("DeleteFunction", map[string]any{"FunctionName": "fn"})
		see("fn", scfemu.Deleting)
		if _, code := c.do("UpdateFunctionConfiguration", map[string]any{"FunctionName": "fn", "Timeout": 7}); code != "FailedOperation.UpdateFunctionConfiguration" {
			t.Errorf("update while Deleting: %q", code)
		}
		time.Sleep(100 * time.Millisecond)
		see("fn", scfemu.DeleteFailed)
		c.ok("DeleteFunction", map[string]any{"FunctionName": "fn"}) // a retry
		time.Sleep(100 * time.Millisecond)
		see("fn", "absent")
		if delete(seen, "absent"); len(seen) != 9 {
			t.Errorf("statuses reached: %v", seen)
		}

		// BusyNext: a change made elsewhere starts just before the next write.
		c.ok("DeleteFunction", map[string]any{"FunctionName": "bad"})
		c.ok("CreateFunction", create("fn2", z, nil))
		time.Sleep(100 * time.Millisecond)
		em.BusyNext("CreateTrigger", 50*time.Millisecond)
		if _, code := c.do("CreateTrigger", map[string]any{"FunctionName": "fn2", "TriggerName": "t", "Type": "timer", "TriggerDesc": "0 */1 * * * * *"}); code != "FailedOperation.CreateTrigger" {
			t.Errorf("write to a function made busy: %q", code)
		}
		time.Sleep(50 * time.Millisecond)
		c.ok("CreateTrigger", map[string]any{"FunctionName": "fn2", "TriggerName": "t", "Type": "timer", "TriggerDesc": "0 */1 * * * * *"})
	})
}

// TestTimerTriggers: a timer's cron comes back as {"cron":…} and Enable as
// 1 or 0, as the live API answers (the component toolkit records both).
func TestTimerTriggers(t *testing.T) {
	_, c := start(t, scfemu.Options{})
	c.ok("CreateFunction", create("fn", goodZip(t), nil))
	trigger := func(extra map[string]any) map[string]any {
		p := map[string]any{"FunctionName": "fn", "TriggerName": "sweep", "Type": "timer", "Qualifier": "$DEFAULT"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	for _, bad := range []string{"*/1 * * * *", "0 */1 * * * * * *", "0 */1 * * * ; *"} {
		if _, code := c.do("CreateTrigger", trigger(map[string]any{"TriggerDesc": bad})); code != "InvalidParameterValue.TriggerDesc" {
			t.Errorf("cron %q: %q", bad, code)
		}
	}
	c.ok("CreateTrigger", trigger(map[string]any{"TriggerDesc": "0 */6 * * * * *", "Enable": "OPEN", "CustomArgument": "hello"}))
	if _, code := c.do("CreateTrigger", trigger(map[string]any{"TriggerDesc": "0 */6 * * * * *"})); code != "ResourceInUse.Trigger" {
		t.Errorf("same name again: %q", code)
	}
	list := func() map[string]any {
		trs := c.ok("ListTriggers", map[string]any{"FunctionName": "fn"})["Triggers"].([]any)
		if len(trs) != 1 {
			t.Fatalf("triggers %v", trs)
		}
		return trs[0].(map[string]any)
	}
	if tr := list(); tr["TriggerDesc"] != `{"cron":"0 */6 * * * * *"}` || tr["Enable"] != 1.0 || tr["CustomArgument"] != "hello" || tr["Type"] != "timer" {
		t.Errorf("timer as listed: %v", tr)
	}
	c.ok("UpdateTrigger", trigger(map[string]any{"TriggerDesc": "0 */1 * * * * *", "Enable": "CLOSE"}))
	if tr := list(); tr["TriggerDesc"] != `{"cron":"0 */1 * * * * *"}` || tr["Enable"] != 0.0 {
		t.Errorf("timer after the update: %v", tr)
	}
}

func TestNamespacesAndBootstrapModes(t *testing.T) {
	em, c := start(t, scfemu.Options{})
	if _, code := c.do("GetFunction", map[string]any{"FunctionName": "fn", "Namespace": "games"}); code != "ResourceNotFound.Namespace" {
		t.Errorf("absent namespace: %q", code)
	}
	em.AddNamespace("games")
	if _, code := c.do("GetFunction", map[string]any{"FunctionName": "fn", "Namespace": "games"}); code != "ResourceNotFound.FunctionName" {
		t.Errorf("absent function in a namespace: %q", code)
	}
	for _, mode := range []uint32{0o755, 0o777} {
		name := fmt.Sprintf("web-%o", mode)
		c.ok("CreateFunction", create(name, zipOf(t, entry{"main", 0o755, deploytest.ELFHeader(62)}, entry{"scf_bootstrap", mode, []byte("#!/bin/bash\n")}),
			map[string]any{"Type": "HTTP", "Namespace": "games"}))
		if fn, _ := em.Function("games", name); fn.Status != scfemu.Active {
			t.Errorf("scf_bootstrap mode %o: %s %v", mode, fn.Status, fn.Reasons)
		}
	}
}
