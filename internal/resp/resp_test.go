package resp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"carbroker/internal/testing/redistest"
)

func okReply(_ int, cmd []string) string {
	switch strings.ToUpper(cmd[0]) {
	case "PING":
		return "+PONG\r\n"
	case "GET":
		return "$5\r\nhello\r\n"
	}
	return "+OK\r\n"
}

// A new connection logs in within one round trip: AUTH (with the user when
// one is set) and SELECT written together, no HELLO; neither without a
// password or with database 0.
func TestLoginIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url  string
		want [][]string
	}{
		{"redis://:pw@%s/2", [][]string{{"AUTH", "pw"}, {"SELECT", "2"}}},
		{"redis://acct:p@ss@%s", [][]string{{"AUTH", "acct", "p@ss"}}},
		{"redis://%s/3", [][]string{{"SELECT", "3"}}},
		{"redis://%s/0", nil},
	} {
		srv := redistest.StartFake(t, nil, okReply)
		o, err := ParseURL(strings.Replace(c.url, "%s", srv.Addr(), 1))
		if err != nil {
			t.Fatal(err)
		}
		cl := New(o)
		for range 2 {
			if r, err := cl.Do(context.Background(), "PING"); err != nil || r != "PONG" {
				t.Fatalf("%s: PING: %v %v", c.url, r, err)
			}
		}
		cl.Close()
		seen := srv.Seen()
		if len(seen) != 1 {
			t.Fatalf("%s: %d connections, want 1 (the second call reuses it)", c.url, len(seen))
		}
		want := [][][]string{{{"PING"}}, {{"PING"}}}
		if c.want != nil {
			want = append([][][]string{c.want}, want...)
		}
		if !reflect.DeepEqual(seen[0], want) {
			t.Errorf("%s: round trips %q, want %q", c.url, seen[0], want)
		}
	}
}

// A login that Redis refuses is an error naming the command, and the
// connection is not used.
func TestLoginRefused(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFake(t, nil, func(_ int, cmd []string) string {
		if cmd[0] == "AUTH" {
			return "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
		}
		return "-NOAUTH Authentication required.\r\n"
	})
	cl := New(Options{Addr: srv.Addr(), Password: "pw", DB: 1})
	defer cl.Close()
	_, err := cl.Do(context.Background(), "PING")
	if err == nil || !strings.Contains(err.Error(), "AUTH: WRONGPASS") || strings.Contains(err.Error(), "pw") {
		t.Fatalf("err %v", err)
	}
}

// A pooled connection that the server closed while it sat idle is
// replaced before the command is written, and the call succeeds; a
// connection that dies after the command was written is not retried (the
// command may have run: TestReproCutReplyIsNotRunTwice).
func TestStaleConnectionIsReplaced(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFake(t, nil, okReply)
	cl := New(Options{Addr: srv.Addr()})
	defer cl.Close()
	if _, err := cl.Do(context.Background(), "PING"); err != nil {
		t.Fatal(err)
	}
	srv.CloseConn(0)                  // the server closes the idle connection
	time.Sleep(50 * time.Millisecond) // its FIN arrives
	r, err := cl.Do(context.Background(), "GET", "k")
	if err != nil || string(r.([]byte)) != "hello" {
		t.Fatalf("GET after the server closed the pooled connection: %v %v", r, err)
	}
	if n := len(srv.Seen()); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	if seen := srv.Seen(); len(seen[0]) != 1 {
		t.Fatalf("the closed connection carried %q, want the PING only", seen[0])
	}
}

// A server that never answers costs the context's deadline, once: a
// timeout is not retried.
func TestSilentServerCostsTheDeadline(t *testing.T) { // not parallel: it counts goroutines
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("carbroker/internal/testing/redistest.(*Fake).serve"),
		goleak.IgnoreAnyFunction("carbroker/internal/testing/redistest.(*Fake).handle"))
	srv := redistest.StartFake(t, nil, func(int, []string) string { return "hang" })
	cl := New(Options{Addr: srv.Addr()})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := cl.Do(ctx, "PING")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("took %v", el)
	}
	if n := len(srv.Seen()); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	// and a cancelled call returns at once, without a goroutine left behind
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	if _, err = cl.Do(ctx, "PING"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want cancelled", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("a cancelled call took %v", el)
	}
}

func TestReplies(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]any{
		"+OK\r\n":                              "OK",
		":-42\r\n":                             int64(-42),
		"$0\r\n\r\n":                           []byte{},
		"$-1\r\n":                              nil,
		"*-1\r\n":                              nil,
		"*0\r\n":                               []any{},
		"-ERR x y\r\n":                         Error("ERR x y"),
		"*3\r\n:1\r\n$2\r\nab\r\n*1\r\n+x\r\n": []any{int64(1), []byte("ab"), []any{"x"}},
		"+" + strings.Repeat("a", 10000) + "\r\n": strings.Repeat("a", 10000),
	} {
		got, err := readReply(bufio.NewReaderSize(strings.NewReader(in), readBuf), 0)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %#v %v, want %#v", in, got, err, want)
		}
	}
	for _, bad := range []string{"\r\n", "OK\r\n", ":x\r\n", "$3\r\nab\r\n", "$2\r\nabc\r\n", "$-2\r\n", "*x\r\n",
		"%1\r\n", "+OK\n", "$99999999999\r\n", strings.Repeat("*1\r\n", 20) + ":1\r\n", "+" + strings.Repeat("a", maxLine+10) + "\r\n"} {
		if got, err := readReply(bufio.NewReaderSize(strings.NewReader(bad), readBuf), 0); err == nil {
			t.Errorf("%q read as %#v", bad, got)
		}
	}
}

// Whatever a server sends, reading a reply ends in a value or an error.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "*2\r\n$1\r\na\r\n:1\r\n", "-ERR\r\n", "$-1\r\n", "*1\r\n*1\r\n*-1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = readReply(bufio.NewReaderSize(bytes.NewReader(in), readBuf), 0)
	})
}

// rediss:// checks the server's certificate against the roots given (the
// system's by default) and the URL's host.
func TestTLS(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.StartFake(t, ln, okReply)
	o, err := ParseURL("rediss://:acct@pw@" + srv.Addr() + "/1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl := New(o)
	if _, err := cl.Do(ctx, "PING"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a certificate of an unknown authority was accepted: %v", err)
	}
	cl.Close()
	o.TLS.RootCAs = x509.NewCertPool()
	o.TLS.RootCAs.AddCert(cert)
	cl = New(o)
	defer cl.Close()
	if r, err := cl.Do(ctx, "PING"); err != nil || r != "PONG" {
		t.Fatalf("PING over TLS: %v %v", r, err)
	}
	seen := srv.Seen()
	if last := seen[len(seen)-1]; !reflect.DeepEqual(last[0], [][]string{{"AUTH", "acct@pw"}, {"SELECT", "1"}}) {
		t.Fatalf("login over TLS: %q", last)
	}
	// the connection is reused: what TLS sends after the handshake (session
	// tickets) does not make it look dead
	for range 3 {
		time.Sleep(20 * time.Millisecond)
		if _, err := cl.Do(ctx, "PING"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Seen()); n != len(seen) {
		t.Fatalf("%d TLS connections for 4 calls, want 1", n-len(seen)+1)
	}
}

// Against a real redis-server: a password holding "@", "/", "?", "#"
// logs in as written in the URL, and the database is the URL's.
func TestRealServerLogin(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	if !rs.IsReal() {
		t.Skip("needs redis-server (the embedded store has no ACLs)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := New(Options{Addr: rs.Addr()})
	defer admin.Close()
	const pw = "acct@2/Kx+9a?B#s3cret"
	if _, err := admin.Do(ctx, "ACL", "SETUSER", "broker", "on", ">u-"+pw, "~*", "+@all"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Do(ctx, "CONFIG", "SET", "requirepass", pw); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"redis://:" + pw + "@" + rs.Addr() + "/3", "redis://broker:u-" + pw + "@" + rs.Addr() + "/3",
		"redis://:acct%402%2FKx+9a%3FB%23s3cret@" + rs.Addr() + "/3"} {
		o, err := ParseURL(u)
		if err != nil {
			t.Fatalf("%s: %v", RedactURL(u), err)
		}
		cl := New(o)
		if _, err := cl.Do(ctx, "SET", "k", RedactURL(u)); err != nil {
			t.Fatalf("%s: %v", RedactURL(u), err)
		}
		cl.Close()
	}
	o, _ := ParseURL("redis://:" + pw + "@" + rs.Addr() + "/3")
	cl := New(o)
	defer cl.Close()
	if n, err := Int64(cl.Do(ctx, "DBSIZE")); err != nil || n != 1 {
		t.Fatalf("db 3 holds %d keys (%v), want 1", n, err)
	}
	o.DB = 0
	cl0 := New(o)
	defer cl0.Close()
	if n, err := Int64(cl0.Do(ctx, "DBSIZE")); err != nil || n != 0 {
		t.Fatalf("db 0 holds %d keys (%v), want 0", n, err)
	}
	o.Password = "wrong"
	bad := New(o)
	defer bad.Close()
	if _, err := bad.Do(ctx, "PING"); err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("a wrong password: %v", err)
	}
}

// A connection idle for longer than IdleTimeout is closed, not reused (a
// frozen instance's connections may be gone without a word); one used
// within it is reused.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFake(t, nil, okReply)
	cl := New(Options{Addr: srv.Addr(), IdleTimeout: 200 * time.Millisecond})
	defer cl.Close()
	ctx := context.Background()
	for _, pause := range []time.Duration{0, 50 * time.Millisecond, 400 * time.Millisecond} {
		time.Sleep(pause)
		if _, err := cl.Do(ctx, "PING"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Seen()); n != 2 {
		t.Fatalf("%d connections, want 2 (the third call found the first one too old)", n)
	}
}

// A script Redis does not have (a restart, a failover, SCRIPT FLUSH) is
// sent whole once, then run by its SHA again.
func TestScriptResentOnNoScript(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := New(Options{Addr: rs.Addr()})
	defer cl.Close()
	sc := NewScript("return {tonumber(ARGV[1]) + 1, KEYS[1]}")
	for range 2 {
		r, err := sc.Run(ctx, cl, []string{"k"}, 41)
		if err != nil || !reflect.DeepEqual(r, []any{int64(42), []byte("k")}) {
			t.Fatalf("run: %#v %v", r, err)
		}
		if _, err := cl.Do(ctx, "SCRIPT", "FLUSH"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewScript("return redis.call('NOSUCH')").Run(ctx, cl, nil); err == nil || !strings.Contains(err.Error(), "ERR") {
		t.Fatalf("a failing script: %v", err)
	}
}
