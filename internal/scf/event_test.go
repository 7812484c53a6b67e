package scf_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"carbroker/internal/scf"
)

// forwarding are the headers no decoded event may carry.
var forwarding = []string{"X-Forwarded-For", "X-Real-Ip", "Forwarded", "X-Scf-Remote-Addr"}

func TestDecodeEventFixtures(t *testing.T) {
	tests := []struct {
		file                         string
		trigger, gatewayID           string
		method, path, rawQuery, host string
		remoteAddr, body             string
		header                       http.Header // a subset of the request's
	}{
		{
			file: "apigw_post_json.json", trigger: "apigw", gatewayID: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
			method: "POST", path: "/release/car/session", host: "service-abcd1234-1250000000.gz.apigw.tencentcs.com",
			remoteAddr: "203.0.113.7:0", body: `{"UserId":"user-1","ProjectId":"cap-12345"}`,
			header: http.Header{
				"Content-Type":    {"application/json"},
				"Authorization":   {"Bearer test-ticket"},
				"X-Api-Requestid": {"3f5e0c9a1b2d4e6f8a0b1c2d3e4f5a6b"},
				"Requestsource":   {"APIGW"},
			},
		},
		{
			file: "apigw_get_query_no_requestid.json", trigger: "apigw", gatewayID: "9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a",
			method: "GET", path: "/release/car/session", rawQuery: "UserId=user-2&tag=a&tag=b&verbose=",
			host: "car.example.com", remoteAddr: "[2001:db8::7]:0",
			header: http.Header{"Accept": {"application/json"}},
		},
		{
			file: "apigw_base64_body.json", trigger: "apigw", gatewayID: "0d6f3a52-6c1e-4b8e-9a7f-2b1c0d9e8f7a",
			method: "PUT", path: "/car/upload", host: "car.example.com", remoteAddr: "203.0.113.8:0",
			body:   "\x00\x01\xfe\xffhello",
			header: http.Header{"Content-Type": {"application/octet-stream"}},
		},
		{
			file: "url_post_json.json", trigger: "url",
			method: "POST", path: "/car/session", rawQuery: "dev=1", host: "1250000000-abcd1234.gz.tencentscf.com",
			remoteAddr: "192.0.2.44:0", body: `{"UserId":"user-3"}`,
			header: http.Header{"Content-Type": {"application/json"}, "User-Agent": {"Mozilla/5.0"}},
		},
		{
			file: "url_no_remote_addr.json", trigger: "url",
			method: "GET", path: "/", host: "1250000000-abcd1234.gz.tencentscf.com",
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := scf.DecodeEvent(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			r := ev.Request
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{ev.Trigger, ev.GatewayRequestID, r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.RemoteAddr, string(body)}
			want := []string{tt.trigger, tt.gatewayID, tt.method, tt.path, tt.rawQuery, tt.host, tt.remoteAddr, tt.body}
			if !slices.Equal(got, want) {
				t.Errorf("trigger, gateway id, method, path, query, host, peer, body:\n got %q\nwant %q", got, want)
			}
			if r.ContentLength != int64(len(tt.body)) {
				t.Errorf("ContentLength = %d, want %d", r.ContentLength, len(tt.body))
			}
			if r.RequestURI != r.URL.RequestURI() {
				t.Errorf("RequestURI = %q", r.RequestURI)
			}
			for k, vs := range tt.header {
				if !slices.Equal(r.Header.Values(k), vs) {
					t.Errorf("header %s = %q, want %q", k, r.Header.Values(k), vs)
				}
			}
			for _, k := range append(forwarding, "Host") {
				if _, ok := r.Header[k]; ok {
					t.Errorf("header %s reached the request: %q", k, r.Header[k])
				}
			}
		})
	}
}

func TestDecodeEventQuirks(t *testing.T) {
	tests := []struct {
		name, event string
		check       func(t *testing.T, r *http.Request, body string)
	}{
		{"sourceIp invalid", `{"requestContext":{"sourceIp":"not-an-ip"},"httpMethod":"GET","path":"/"}`,
			wantPeer("")},
		{"sourceIp missing", `{"requestContext":{},"httpMethod":"GET","path":"/","headers":{"x-forwarded-for":"1.2.3.4"}}`,
			wantPeer("")},
		{"sourceIp 4in6", `{"requestContext":{"sourceIp":"::ffff:203.0.113.9"},"httpMethod":"GET","path":"/"}`,
			wantPeer("203.0.113.9:0")},
		{"sourceIp with zone", `{"requestContext":{"sourceIp":"fe80::1%eth0"},"httpMethod":"GET","path":"/"}`,
			wantPeer("")},
		{"remote addr with port", `{"httpMethod":"GET","path":"/","headers":{"x-scf-remote-addr":"[2001:db8::1]:4321"}}`,
			wantPeer("[2001:db8::1]:0")},
		{"remote addr twice", `{"httpMethod":"GET","path":"/","headers":{"x-scf-remote-addr":"192.0.2.1","X-Scf-Remote-Addr":"192.0.2.2"}}`,
			wantPeer("")},
		{"remote addr as array", `{"httpMethod":"GET","path":"/","headers":{"x-scf-remote-addr":["192.0.2.1","192.0.2.2"]}}`,
			wantPeer("")},
		{"requestContext null is a Function URL", `{"requestContext":null,"httpMethod":"GET","path":"/","headers":{"x-scf-remote-addr":"192.0.2.1"}}`,
			wantPeer("192.0.2.1:0")},
		{"header array", `{"httpMethod":"GET","path":"/","headers":{"accept":["a/b","c/d"],"x-n":7,"x-flag":true,"x-off":false,"x-nil":null}}`,
			func(t *testing.T, r *http.Request, _ string) {
				want := map[string][]string{"Accept": {"a/b", "c/d"}, "X-N": {"7"}, "X-Flag": {""}}
				if fmt.Sprint(map[string][]string(r.Header)) != fmt.Sprint(want) {
					t.Errorf("header = %q, want %q", r.Header, want)
				}
			}},
		{"queryStringParameters only", `{"httpMethod":"GET","path":"/","queryStringParameters":{"a":"1","b":["2","3"]}}`,
			wantQuery("a=1&b=2&b=3")},
		{"queryString wins", `{"httpMethod":"GET","path":"/","queryString":{"a":"1"},"queryStringParameters":{"a":"1"}}`,
			wantQuery("a=1")},
		{"query escaping", `{"httpMethod":"GET","path":"/","queryString":{"q":"a b&c=d","n":1.5}}`,
			wantQuery("n=1.5&q=a+b%26c%3Dd")},
		{"base64 bool", `{"httpMethod":"POST","path":"/","body":"aGk=","isBase64Encoded":true}`, wantBody("hi")},
		{"base64 unpadded", `{"httpMethod":"POST","path":"/","body":"aGk","isBase64Encoded":"TRUE"}`, wantBody("hi")},
		{"base64 false", `{"httpMethod":"POST","path":"/","body":"aGk=","isBase64Encoded":"false"}`, wantBody("aGk=")},
		{"body null", `{"httpMethod":"POST","path":"/","body":null}`, wantBody("")},
		{"path missing", `{"httpMethod":"GET"}`, wantPath("/", "")},
		{"path without slash", `{"httpMethod":"GET","path":"car"}`, wantPath("/car", "")},
		{"path encoded", `{"httpMethod":"GET","path":"/a%20b/c%2Fd"}`, wantPath("/a b/c/d", "/a%20b/c%2Fd")},
		{"path bad escape", `{"httpMethod":"GET","path":"/100%"}`, wantPath("/100%", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := scf.DecodeEvent([]byte(tt.event))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(ev.Request.Body)
			tt.check(t, ev.Request, string(body))
		})
	}
}

func wantPeer(addr string) func(*testing.T, *http.Request, string) {
	return func(t *testing.T, r *http.Request, _ string) {
		if r.RemoteAddr != addr {
			t.Errorf("RemoteAddr = %q, want %q", r.RemoteAddr, addr)
		}
		for _, k := range forwarding {
			if _, ok := r.Header[k]; ok {
				t.Errorf("header %s reached the request", k)
			}
		}
	}
}

func wantQuery(q string) func(*testing.T, *http.Request, string) {
	return func(t *testing.T, r *http.Request, _ string) {
		if r.URL.RawQuery != q {
			t.Errorf("RawQuery = %q, want %q", r.URL.RawQuery, q)
		}
	}
}

func wantBody(b string) func(*testing.T, *http.Request, string) {
	return func(t *testing.T, r *http.Request, body string) {
		if body != b || r.ContentLength != int64(len(b)) {
			t.Errorf("body = %q (ContentLength %d), want %q", body, r.ContentLength, b)
		}
	}
}

func wantPath(path, rawPath string) func(*testing.T, *http.Request, string) {
	return func(t *testing.T, r *http.Request, _ string) {
		if r.URL.Path != path || r.URL.RawPath != rawPath {
			t.Errorf("Path, RawPath = %q, %q; want %q, %q", r.URL.Path, r.URL.RawPath, path, rawPath)
		}
	}
}

func TestDecodeEventErrors(t *testing.T) {
	big := base64.StdEncoding.EncodeToString(make([]byte, scf.MaxBodyBytes+1))
	tests := []struct{ name, event string }{
		{"empty", ``},
		{"not JSON", `garbage`},
		{"array", `[1,2]`},
		{"null", `null`},
		{"string", `"GET /"`},
		{"no method", `{}`},
		{"timer event", `{"Type":"Timer","TriggerName":"t","Time":"2024-01-01T00:00:00Z","Message":""}`},
		{"bad method", `{"httpMethod":"GE T","path":"/"}`},
		{"body not a string", `{"httpMethod":"POST","path":"/","body":{"a":1}}`},
		{"header object", `{"httpMethod":"GET","headers":{"a":{"b":"c"}}}`},
		{"query nested array", `{"httpMethod":"GET","queryString":{"a":[["b"]]}}`},
		{"requestContext not an object", `{"httpMethod":"GET","requestContext":"x"}`},
		{"bad base64", `{"httpMethod":"POST","body":"!!!","isBase64Encoded":true}`},
		{"body too large", `{"httpMethod":"POST","body":"` + big + `","isBase64Encoded":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := scf.DecodeEvent([]byte(tt.event))
			if err == nil {
				t.Fatalf("decoded %+v", ev.Request)
			}
			if tt.name == "body too large" && !errors.Is(err, scf.ErrBodyTooLarge) {
				t.Errorf("err = %v, want ErrBodyTooLarge", err)
			}
		})
	}
}

func TestEncodeResponse(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   string
	}{
		{"json", 200, http.Header{"Content-Type": {"application/json"}}, `{"a":"<b>"}`,
			`{"isBase64Encoded":false,"statusCode":200,"headers":{"Content-Type":"application/json"},"body":"{\"a\":\"<b>\"}"}`},
		// Strings only, as scf-go-lib's map[string]string: a repeated header is joined.
		{"repeated header", 201, http.Header{"Vary": {"Origin", "Accept-Encoding"}, "X-One": {"a"}, "X-Empty": {}}, ``,
			`{"isBase64Encoded":false,"statusCode":201,"headers":{"Vary":"Origin, Accept-Encoding","X-One":"a"},"body":""}`},
		{"no headers", 204, nil, ``,
			`{"isBase64Encoded":false,"statusCode":204,"headers":{},"body":""}`},
		{"binary", 200, http.Header{"Content-Type": {"image/png"}}, "\x89PNG\r\n\x1a\n\xff",
			`{"isBase64Encoded":true,"statusCode":200,"headers":{"Content-Type":"image/png"},"body":"iVBORw0KGgr/"}`},
		{"utf-8 text", 404, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, "未找到\n",
			`{"isBase64Encoded":false,"statusCode":404,"headers":{"Content-Type":"text/plain; charset=utf-8"},"body":"未找到\n"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scf.EncodeResponse(tt.status, tt.header, []byte(tt.body))
			if err := jsonEqual(tt.want, got); err != nil {
				t.Errorf("%v\n got %s", err, got)
			}
		})
	}
}

// FuzzDecodeEvent checks that no input panics the decoder and that a decoded
// request is well formed.
func FuzzDecodeEvent(f *testing.F) {
	for _, name := range []string{"apigw_post_json.json", "apigw_get_query_no_requestid.json",
		"apigw_base64_body.json", "url_post_json.json", "url_no_remote_addr.json"} {
		f.Add(fixture(f, name))
	}
	for _, s := range []string{``, `null`, `{}`, `[]`, `{"httpMethod":"GET","queryString":{"a":[true,1,null]}}`,
		`{"httpMethod":"POST","body":"aGk","isBase64Encoded":"true","requestContext":{"sourceIp":"::1"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, err := scf.DecodeEvent(payload)
		if err != nil {
			return
		}
		r := ev.Request
		if r == nil || r.Body == nil || r.Header == nil || r.URL == nil || !strings.HasPrefix(r.URL.Path, "/") {
			t.Fatalf("malformed request %+v", r)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil || int64(len(body)) != r.ContentLength || len(body) > scf.MaxBodyBytes {
			t.Fatalf("body of %d bytes, ContentLength %d, err %v", len(body), r.ContentLength, err)
		}
		for _, k := range forwarding {
			if _, ok := r.Header[k]; ok {
				t.Fatalf("header %s reached the request", k)
			}
		}
		if ev.Trigger != "apigw" && ev.Trigger != "url" {
			t.Fatalf("trigger %q", ev.Trigger)
		}
	})
}
