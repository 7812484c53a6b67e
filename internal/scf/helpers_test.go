package scf_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"carbroker/internal/httpapi"
	"carbroker/internal/testing/scftest"

	smithytesting "github.com/aws/smithy-go/testing"
)

// fixture reads testdata/name, the golden events next to their decoder.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// triple is the credential triple as the tests' WithInvokeContext hook
// (withTriple) read it from the environment an invoke left.
type triple struct{ ID, Key, Token string }

func (t triple) Valid() bool { return t.ID != "" && t.Key != "" }

type tripleKey struct{}

// withTriple is the runtime's invoke hook in these tests: it attaches the
// triple in the environment, as the composition root attaches CAR's.
func withTriple(ctx context.Context, getenv func(string) string) context.Context {
	t := triple{getenv("TENCENTCLOUD_SECRETID"), getenv("TENCENTCLOUD_SECRETKEY"), getenv("TENCENTCLOUD_SESSIONTOKEN")}
	return context.WithValue(ctx, tripleKey{}, t)
}

// seen is what echoHandler saw of a request.
type seen struct {
	Method, Path, RawPath, RawQuery, Host, RemoteAddr, Body string
	Header                                                  http.Header
	Triple                                                  *triple
	Info                                                    *httpapi.Invocation
	Deadline                                                *time.Time
}

// echoHandler answers 200 with the JSON of what it saw; a request for
// /panic panics with a string, /panic/error with an error, /panic/index
// with the runtime's index error.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/panic":
		panic("boom")
	case "/panic/error":
		panic(errors.New("boom"))
	case "/panic/index":
		var none []int
		_ = none[len(r.URL.Path)]
	}
	body, _ := io.ReadAll(r.Body)
	s := seen{
		Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
		Host: r.Host, RemoteAddr: r.RemoteAddr, Body: string(body), Header: r.Header,
	}
	if t, ok := r.Context().Value(tripleKey{}).(triple); ok {
		s.Triple = &t
	}
	if i, ok := httpapi.InvocationFrom(r.Context()); ok {
		s.Info = &i
	}
	if d, ok := r.Context().Deadline(); ok {
		s.Deadline = &d
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s)
})

func decodeIntegration(t testing.TB, payload []byte) scftest.Response {
	t.Helper()
	r, err := scftest.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// decodeSeen reads echoHandler's answer.
func decodeSeen(t testing.TB, payload []byte) seen {
	t.Helper()
	r := decodeIntegration(t, payload)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", r.StatusCode, r.Body)
	}
	var s seen
	if err := json.Unmarshal([]byte(r.Body), &s); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	return s
}

// apiError is the JSON error body of an integration response.
type apiError struct {
	Error     struct{ Code, Message string }
	RequestId string
}

// jsonEqual compares JSON regardless of key order.
func jsonEqual(want string, got []byte) error {
	if err := smithytesting.JSONEqual([]byte(want), got); err != nil {
		return fmt.Errorf("%v\n got %s\nwant %s", err, got, want)
	}
	return nil
}
