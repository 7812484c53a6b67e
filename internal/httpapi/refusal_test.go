package httpapi_test

import (
	"strconv"
	"strings"
	"testing"

	"carbroker/internal/dev/caremu"
)

// Every refusal is a clear error and changes nothing: no CAR call.
func TestRefusalsMakeNoCARCall(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"CAR_ALLOWED_PROJECT_IDS":          testProject + ",cap-other001",
		"CAR_ALLOWED_APPLICATION_IDS":      "app-allowed1",
		"CAR_ALLOWED_VERSION_IDS":          "ver-allowed1",
		"CAR_ALLOW_APPLICATION_PARAMETERS": `-level=[0-9]{1,2}`,
	}
	e := newEnv(t, caremu.Options{}, vars)
	long := strings.Repeat("a", 64<<10+1)
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"bad JSON", `{"UserId":`, 400, "InvalidParameter"},
		{"JSON array", `["UserId"]`, 400, "InvalidParameter"},
		{"two objects", `{"UserId":"a"}{"UserId":"b"}`, 400, "InvalidParameter"},
		{"object field", `{"UserId":{"x":1},"ClientSession":"cs"}`, 400, "InvalidParameter"},
		{"missing UserId", `{"ClientSession":"cs"}`, 400, "InvalidParameter"},
		{"empty body", ``, 400, "InvalidParameter"},
		{"UserId with space", `{"UserId":"a b","ClientSession":"cs"}`, 400, "InvalidParameter"},
		{"UserId too long", `{"UserId":"` + strings.Repeat("u", 65) + `","ClientSession":"cs"}`, 400, "InvalidParameter"},
		{"UserId unicode", `{"UserId":"用户","ClientSession":"cs"}`, 400, "InvalidParameter"},
		{"missing ClientSession", `{"UserId":"u1"}`, 400, "InvalidParameter"},
		{"ClientSession too long", `{"UserId":"u1","ClientSession":"` + long + `"}`, 400, "InvalidParameter"},
		{"bad Role", `{"UserId":"u1","ClientSession":"cs","Role":"Admin"}`, 400, "InvalidParameter"},
		{"bad RunMode", `{"UserId":"u1","ClientSession":"cs","RunMode":"Other"}`, 400, "InvalidParameter"},
		{"bad ProjectId", `{"UserId":"u1","ClientSession":"cs","ProjectId":"cap x"}`, 400, "InvalidParameter"},
		{"ApplicationParameters too long", `{"UserId":"u1","ClientSession":"cs","ApplicationParameters":"` + strings.Repeat("p", 1025) + `"}`, 400, "InvalidParameter"},
		{"body too large", `{"UserId":"u1","ClientSession":"` + strings.Repeat("a", 256<<10) + `"}`, 413, "RequestTooLarge"},
		{"project not allowed", `{"UserId":"u1","ClientSession":"cs","ProjectId":"cap-evil0001"}`, 403, "Forbidden"},
		{"application not allowed", `{"UserId":"u1","ClientSession":"cs","ApplicationId":"app-evil0001"}`, 403, "Forbidden"},
		{"version not allowed", `{"UserId":"u1","ClientSession":"cs","ApplicationVersionId":"ver-evil0001"}`, 403, "Forbidden"},
		{"parameters not matching", `{"UserId":"u1","ClientSession":"cs","ApplicationParameters":"-level=1 -cheat"}`, 403, "Forbidden"},
		{"RunWithoutClient not allowed", `{"UserId":"u1","RunMode":"RunWithoutClient"}`, 403, "Forbidden"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/session", c.body)
			if r.Status != c.status || r.code() != c.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Raw, c.status, c.code)
			}
			if msg := r.str("Error", "Message"); msg == "" || strings.Contains(msg, "cs") && c.code == "InvalidParameter" && strings.Contains(msg, `"cs"`) {
				t.Errorf("message %q", msg)
			}
		})
	}
	if n := e.carCalls(""); n != 0 {
		t.Fatalf("%d CAR calls for refused requests", n)
	}

	// The same fields, allowed, do reach CAR.
	for _, body := range []string{
		`{"UserId":"u1","ClientSession":"cs","ProjectId":"cap-other001","ApplicationId":"app-allowed1","ApplicationVersionId":"ver-allowed1"}`,
		`{"UserId":"u2","ClientSession":"cs","ApplicationParameters":"-level=42"}`,
	} {
		if r := e.do("POST", "/session", body); r.Status != 200 {
			t.Errorf("%s: %d %s", body, r.Status, r.Raw)
		}
	}
}

func TestRunWithoutClientWhenAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"CAR_ALLOW_RUN_WITHOUT_CLIENT": "true"})
	r := e.do("POST", "/session", `{"UserId":"bot1","RunMode":"RunWithoutClient"}`)
	if r.Status != 200 || r.str("ServerSession") == "" {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
}

func TestStopUserIDRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, nil)
	for _, c := range []struct {
		target, body string
		status       int
	}{
		{"/session?UserId=a", `{"UserId":"b"}`, 400},
		{"/session?UserId=a&UserId=b", ``, 400},
		{"/session", `{}`, 400},
		{"/session?UserId=a%20b", ``, 400},
		{"/session?UserId=a", `{"UserId":"a"}`, 200},
	} {
		if r := e.do("DELETE", c.target, c.body); r.Status != c.status {
			t.Errorf("DELETE %s %s: %d %s", c.target, c.body, r.Status, r.Raw)
		}
	}
	if n := e.carCalls("DestroySession"); n != 1 {
		t.Errorf("DestroySession calls = %d, want 1 (only the valid request)", n)
	}
}

// ApplicationParameters reach CAR's command line: control characters are
// refused even when the allowed pattern would match them.
func TestApplicationParametersControlCharacters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"CAR_ALLOW_APPLICATION_PARAMETERS": `(?s).*`})
	for _, p := range []string{`-a\n-b`, `-a\r`, `-a\u0000`, `-a\u007f`, `-a\u0085`} {
		r := e.do("POST", "/session", `{"UserId":"u1","ClientSession":"cs","ApplicationParameters":"`+p+`"}`)
		if r.Status != 400 || !strings.Contains(r.str("Error", "Message"), "control characters") {
			t.Errorf("%s: %d %s", p, r.Status, r.Raw)
		}
	}
	if n := e.carCalls(""); n != 0 {
		t.Fatalf("%d CAR calls for refused requests", n)
	}
	if r := e.do("POST", "/session", `{"UserId":"u1","ClientSession":"cs","ApplicationParameters":"-level=1 -name=é"}`); r.Status != 200 {
		t.Errorf("plain parameters: %d %s", r.Status, r.Raw)
	}
}

// A newcomer's mistakes get a message that says what was wrong, not
// "ClientSession is required"; the request log keeps that message.
func TestErrorMessagesSayWhatWasWrong(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, nil)
	form := []string{"Content-Type", "application/x-www-form-urlencoded"} // what curl -d sends
	cases := []struct {
		name, method, path, body string
		header                   []string
		status                   int
		want                     []string
	}{
		{"lowercase keys", "POST", "/session", `{"userId":"u1","clientSession":"cs"}`, nil, 400,
			[]string{"clientSession (did you mean ClientSession?)", "userId (did you mean UserId?)", "case-sensitive"}},
		{"lowercase keys, demo route", "POST", "/StartProject", `{"userId":"u1","ClientSession":"cs"}`, nil, 200,
			[]string{"userId (did you mean UserId?)"}},
		{"unknown field", "POST", "/session", `{"UserId":"u1","ClientSession":"cs","Colour":"red"}`, nil, 400,
			[]string{"unknown field Colour", "ClientSession"}},
		{"unknown field on a stop", "DELETE", "/session", `{"UserId":"u1","ClientSession":"cs"}`, nil, 400,
			[]string{"unknown field ClientSession", "UserId"}},
		{"an array", "POST", "/session", `[1]`, nil, 400, []string{"must be a JSON object"}},
		{"an array, sent by curl -d", "POST", "/session", `[1]`, form, 400, []string{"must be a JSON object"}},
		{"a string", "POST", "/session", `"UserId"`, nil, 400, []string{"must be a JSON object"}},
		{"empty body", "POST", "/session", ``, nil, 400, []string{"the body is empty", "ClientSession"}},
		{"empty body, sent by curl -d", "POST", "/session", ``, form, 400, []string{"the body is empty"}},
		{"no such route", "POST", "/sessions/x", `{}`, nil, 404,
			[]string{"POST /session", "DELETE /session", "POST /session/invite", "GET /healthz", "POST /StartProject", "POST /StopProject", "POST /Enqueue", "POST /Dequeue"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.noCAR(c.name, func() {
				r := e.do(c.method, c.path, c.body, c.header...)
				msg := r.str("Error", "Message")
				if c.path == "/StartProject" {
					msg = r.str("Msg")
					if r.str("Code") != "10001" {
						t.Errorf("Code %s, want 10001: %s", r.str("Code"), r.Raw)
					}
				}
				if r.Status != c.status {
					t.Errorf("status %d, want %d: %s", r.Status, c.status, r.Raw)
				}
				for _, w := range c.want {
					if !strings.Contains(msg, w) {
						t.Errorf("message %q lacks %q", msg, w)
					}
				}
				if !strings.Contains(e.logs.String(), `"message":`+strconv.Quote(msg)) {
					t.Errorf("the request log lacks the message %q", msg)
				}
			})
		})
	}
	// The demo's routes ignore fields they do not read, as the demo does.
	if r := e.do("POST", "/StartProject", `{"UserId":"u1","ProjectId":"`+testProject+`","ClientSession":"cs","Colour":"red"}`); r.str("Code") != "0" {
		t.Errorf("an extra field on a demo route: %s", r.Raw)
	}
}
