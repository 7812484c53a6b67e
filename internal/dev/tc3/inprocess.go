package tc3

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
)

// InProcess returns an http.RoundTripper that hands each request to h in
// the caller's goroutine, without a socket: an SDK client reaches an
// emulator in process (and, in tests, inside a testing/synctest bubble,
// where real network I/O would block outside it). A request whose context
// ends before it is answered fails with the context's error, as with a
// real transport.
func InProcess(h http.Handler) http.RoundTripper { return inProcess{h} }

type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	ctx := req.Context()
	sr := req.Clone(ctx)
	sr.Body = io.NopCloser(bytes.NewReader(body))
	sr.ContentLength = int64(len(body))
	if sr.Host == "" {
		sr.Host = req.URL.Host
	}
	sr.RequestURI = req.URL.RequestURI()
	sr.RemoteAddr = "127.0.0.1:1"

	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, sr)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
