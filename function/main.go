// Command main is the CAR session broker: one binary that runs as a Tencent
// SCF event function (Go1 runtime), a web function or plain HTTP server
// (-listen), or locally with an embedded CAR emulator (-dev).
//
// The mode is chosen at start: -dev, else -listen ADDR, else the SCF port in
// _LAMBDA_SERVER_PORT (or _SCF_SERVER_PORT); otherwise it prints usage and
// exits non-zero.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"carbroker/internal/app"
)

// version is set at build time (-ldflags -X main.version=…).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, app.Env{Args: os.Args[1:], Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr}, version)
	stop()
	os.Exit(code)
}
