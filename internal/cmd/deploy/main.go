// Command deploy deploys the broker to Tencent SCF through the SCF API, from
// serverless.yml (or a variant), as make deploy and make remove run it:
//
//	go run ./internal/cmd/deploy [-file serverless.yml] [-stage prod] [-zip dist/function.zip] [-dry-run] [-url-file F]
//	go run ./internal/cmd/deploy -remove [-confirm] [-file …] [-stage …]
//
// It prints the plan (every setting and variable that changes, secrets
// masked), then creates or updates only what differs, waits for the function
// to be Active after each write, and prints the Function URL(s); -url-file
// also writes the first one there, for make smoke.
//
// Environment (the process's, then .env.<stage> and .env beside the file and
// in the current folder): TENCENTCLOUD_SECRETID / TENCENTCLOUD_SECRETKEY
// (/ TENCENTCLOUD_SESSIONTOKEN), or the SDK's TENCENTCLOUD_SECRET_ID /
// TENCENTCLOUD_SECRET_KEY, else the SDK's profile file; TENCENT_REGION when the
// file names no region; SCF_API_ENDPOINT (scheme and host) to send elsewhere
// than https://scf.tencentcloudapi.com; every ${env:NAME} of the file.
//
// Exit status: 0 done, 1 failed (the error says what to do), 2 bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"carbroker/internal/scfdeploy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "serverless.yml", "the serverless.yml to deploy")
	stage := fs.String("stage", "", "the stage (default: the file's)")
	zipPath := fs.String("zip", "dist/function.zip", "the code package (make package)")
	dryRun := fs.Bool("dry-run", false, "print the plan, change nothing")
	remove := fs.Bool("remove", false, "delete the Function URL and the function")
	confirm := fs.Bool("confirm", false, "with -remove: really delete")
	urlFile := fs.String("url-file", "", "write the Function URL to this file")
	poll := fs.Duration("poll", 2*time.Second, "how often to check the function's status while it changes")
	wait := fs.Duration("wait", 5*time.Minute, "how long to wait for each change")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "deploy: unexpected arguments %q\n", fs.Args())
		return 2
	}

	spec, err := scfdeploy.Load(*file, scfdeploy.LoadOptions{Stage: *stage, Getenv: getenv})
	if err != nil {
		fmt.Fprintf(stderr, "deploy: %v\n", err)
		return 1
	}
	creds, err := scfdeploy.Credentials(spec.Env)
	if err != nil {
		fmt.Fprintf(stderr, "deploy: %v\n", err)
		return 1
	}
	client, err := scfdeploy.NewClient(creds, spec.Region, spec.Env("SCF_API_ENDPOINT"), nil)
	if err != nil {
		fmt.Fprintf(stderr, "deploy: %v\n", err)
		return 2
	}
	o := scfdeploy.Options{Client: client, Out: stdout, DryRun: *dryRun, Poll: *poll, Wait: *wait}
	if *remove {
		if err := scfdeploy.Remove(ctx, spec, *confirm, o); err != nil {
			fmt.Fprintf(stderr, "remove: %v\n", err)
			return 1
		}
		return 0
	}
	res, err := scfdeploy.Deploy(ctx, spec, *zipPath, o)
	if err != nil {
		fmt.Fprintf(stderr, "deploy: %v\n", err)
		return 1
	}
	if *urlFile != "" && !*dryRun {
		url := ""
		if len(res.URLs) > 0 {
			url = res.URLs[0]
		}
		if err := os.WriteFile(*urlFile, []byte(strings.TrimSpace(url)+"\n"), 0o644); err != nil {
			fmt.Fprintf(stderr, "deploy: %v\n", err)
			return 1
		}
	}
	return 0
}
