package car_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"carbroker/internal/car"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/fault"
)

const (
	id  = "AKIDcarclient000001"
	key = "car-client-secret-00000000000001"
)

func newPair(t *testing.T, getenv func(string) string) (*car.Client, *caremu.Emulator) {
	t.Helper()
	emu := caremu.New(caremu.Options{Credentials: map[string]caremu.Credential{id: {SecretKey: key}, "AKIDtok": {SecretKey: key, Token: "tok"}}})
	cl := emu.Client() // id, the first SecretId
	if getenv == nil {
		getenv = cl.Getenv
	}
	return car.New(car.Options{Host: "car.tencentcloudapi.com", Transport: cl.Transport, Getenv: getenv}), emu
}

func env(id, key, token string) func(string) string {
	m := map[string]string{"TENCENTCLOUD_SECRETID": id, "TENCENTCLOUD_SECRETKEY": key, "TENCENTCLOUD_SESSIONTOKEN": token}
	return func(k string) string { return m[k] }
}

func TestActionsAndCallLog(t *testing.T) {
	c, emu := newPair(t, nil)
	ctx, calls := car.WithCallLog(context.Background())
	rid, err := c.ApplyConcurrent(ctx, car.ApplyConcurrentInput{UserID: "u1", UserIP: "203.0.113.1", ProjectID: "cap-1"})
	if err != nil || rid == "" {
		t.Fatalf("ApplyConcurrent: %q %v", rid, err)
	}
	out, err := c.CreateSession(ctx, car.CreateSessionInput{UserID: "u1", UserIP: "203.0.113.1", ClientSession: "cs"})
	if err != nil || out.ServerSession == "" || out.RequestID == "" {
		t.Fatalf("CreateSession: %+v %v", out, err)
	}
	n, err := c.DescribeConcurrentCount(ctx, "cap-1", "")
	if err != nil || n.Total != 4 || n.Running != 1 {
		t.Fatalf("DescribeConcurrentCount: %+v %v", n, err)
	}
	if _, err := c.DestroySession(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	got := calls.Calls()
	if len(got) != 4 || got[0].Action != "ApplyConcurrent" || got[0].RequestID != rid || got[3].Action != "DestroySession" {
		t.Errorf("call log: %+v", got)
	}
	// Absent optionals are not sent at all.
	for _, call := range emu.Calls() {
		if _, ok := call.Params["ApplicationId"]; ok {
			t.Errorf("an absent ApplicationId was sent: %+v", call.Params)
		}
	}
}

func TestCredentialsPerCall(t *testing.T) {
	c, _ := newPair(t, env("", "", ""))
	_, err := c.DestroySession(context.Background(), "u1")
	if fe := fault.As(err); fe.Kind != fault.Internal || fe.Code != "MissingCredentials" {
		t.Fatalf("no credentials: %v", err)
	}
	// The context's triple wins over the environment; a token is sent.
	ctx := car.WithCredentials(context.Background(), car.Credentials{ID: "AKIDtok", Key: key, Token: "tok"})
	if _, err := c.DestroySession(ctx, "u1"); err != nil {
		t.Fatalf("credentials from the context: %v", err)
	}
	ctx = car.WithCredentials(context.Background(), car.Credentials{ID: "AKIDtok", Key: key, Token: "stale"})
	if _, err := c.DestroySession(ctx, "u1"); fault.As(err).Code != "AuthFailure.TokenFailure" {
		t.Fatalf("a stale token must be sent and refused: %v", err)
	}
	// The SDK's variable names are accepted.
	sdk := map[string]string{"TENCENTCLOUD_SECRET_ID": id, "TENCENTCLOUD_SECRET_KEY": key}
	c2, _ := newPair(t, func(k string) string { return sdk[k] })
	if _, err := c2.DestroySession(context.Background(), "u1"); err != nil {
		t.Fatalf("SDK variable names: %v", err)
	}
}

func TestErrorsAreConvertedWithoutBodies(t *testing.T) {
	c, emu := newPair(t, nil)
	const secret = "SERVERSESSION-IN-A-BROKEN-BODY"
	emu.Inject("CreateSession", caremu.Raw(500, "text/html", "<html>"+secret))
	_, err := c.CreateSession(context.Background(), car.CreateSessionInput{UserID: "u1", UserIP: "203.0.113.1", ClientSession: "cs"})
	fe := fault.As(err)
	if fe.Kind != fault.Upstream || fe.Code != "ClientError.ParseJsonError" || fe.Action != "CreateSession" {
		t.Fatalf("%+v", fe)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(fe.Err.Error(), secret) || strings.Contains(fe.Message, secret) {
		t.Errorf("the raw body survived conversion: %v / %v", err, fe.Err)
	}
}

func TestDeadlineAndConnectionRefused(t *testing.T) {
	c, emu := newPair(t, nil)
	emu.Inject("ApplyConcurrent", caremu.Hang())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.ApplyConcurrent(ctx, car.ApplyConcurrentInput{UserID: "u1", UserIP: "203.0.113.1", ProjectID: "cap-1"})
	if fe := fault.As(err); fe.Kind != fault.Timeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang past the deadline: %+v", fe)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	tr := car.NewTransport()
	defer tr.CloseIdleConnections()
	refused := car.New(car.Options{Host: addr, Scheme: "HTTP", Transport: tr, Getenv: env(id, key, "")})
	_, err = refused.ApplyConcurrent(context.Background(), car.ApplyConcurrentInput{UserID: "u1", UserIP: "203.0.113.1", ProjectID: "cap-1"})
	if fe := fault.As(err); fe.Kind != fault.Upstream || fe.Code != "ClientError.NetworkError" {
		t.Fatalf("connection refused: %+v", fe)
	}
}

func TestRealListener(t *testing.T) {
	emu := caremu.New(caremu.Options{Credentials: map[string]caremu.Credential{id: {SecretKey: key}}})
	ep, stop, err := emu.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	tr := car.NewTransport()
	defer tr.CloseIdleConnections()
	c := car.New(car.Options{Host: ep, Scheme: "HTTP", Transport: tr, Getenv: env(id, key, "")})
	c.Warm(context.Background())
	if _, err := c.ApplyConcurrent(context.Background(), car.ApplyConcurrentInput{UserID: "u1", UserIP: "203.0.113.1", ProjectID: "cap-1"}); err != nil {
		t.Fatal(err)
	}
	_ = http.StatusOK
}
