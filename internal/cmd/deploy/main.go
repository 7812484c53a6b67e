// Command deploy deploys the broker to Tencent SCF through the SCF API, from
// serverless.yml (or a variant), as make deploy and make remove run it:
//
//	go run ./internal/cmd/deploy [-file serverless.yml] [-stage prod] [-zip dist/function.zip] [-dry-run] [-url-file F]
//	go run ./internal/cmd/deploy -remove [-confirm] [-file …] [-stage …]
//	go run ./internal/cmd/deploy -local [-file …] [-stage …] [-zip …]
//
// -local is the rehearsal (make deploy-local): it starts the SCF API
// emulator (internal/deploy/scfemu) on 127.0.0.1, deploys into it as make deploy
// would deploy to Tencent, prints the plan, the Function URL and the write
// calls, then deploys the same again to show that an unchanged deploy makes
// no write. Nothing leaves the machine and no credentials are needed;
// SCF_ROLE, CAR_PROJECT_ID and AUTH_MODE get example values when unset.
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
	"slices"
	"strings"
	"time"

	"carbroker/internal/car"
	"carbroker/internal/deploy/scfdeploy"
	"carbroker/internal/deploy/scfemu"
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
	local := fs.Bool("local", false, "rehearse: deploy twice into a local SCF API emulator")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "deploy: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *local {
		if *remove || *dryRun {
			fmt.Fprintln(stderr, "deploy: -local rehearses a deploy: without -remove and -dry-run")
			return 2
		}
		return rehearse(ctx, *file, *stage, *zipPath, getenv, stdout, stderr)
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

// localExamples are the values the rehearsal uses for the settings
// serverless.yml requires, when they are unset.
var localExamples = map[string]string{
	"SCF_ROLE":       "carbroker-local-role",
	"CAR_PROJECT_ID": "cap-local00000",
	"AUTH_MODE":      "none",
}

// rehearse deploys the file twice into a local SCF API emulator.
func rehearse(ctx context.Context, file, stage, zipPath string, getenv func(string) string, stdout, stderr io.Writer) int {
	var filled []string
	fallback := func(k string) string {
		v := localExamples[k]
		if v != "" && !slices.Contains(filled, k) {
			filled = append(filled, k)
		}
		return v
	}
	spec, err := scfdeploy.Load(file, scfdeploy.LoadOptions{Stage: stage, Getenv: getenv, Fallback: fallback})
	if err != nil {
		fmt.Fprintf(stderr, "deploy: %v\n", err)
		return 1
	}
	em := scfemu.New(scfemu.Options{CreateDelay: 500 * time.Millisecond, UpdateDelay: 300 * time.Millisecond})
	if spec.Namespace != "" {
		em.AddNamespace(spec.Namespace)
	}
	endpoint, stop, err := em.Listen("")
	if err != nil {
		fmt.Fprintf(stderr, "deploy: %v\n", err)
		return 1
	}
	defer stop()
	creds := car.Credentials{ID: scfemu.DefaultSecretID, Key: scfemu.DefaultSecretKey}
	client, err := scfdeploy.NewClient(creds, spec.Region, "http://"+endpoint, nil)
	if err != nil {
		fmt.Fprintf(stderr, "deploy: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "local rehearsal: the SCF API emulator on http://%s stands in for Tencent; nothing leaves this machine\n", endpoint)
	slices.Sort(filled)
	for _, k := range filled {
		fmt.Fprintf(stdout, "local rehearsal: %s is not set: using the example %s=%s (set it for a real deploy)\n", k, k, localExamples[k])
	}
	o := scfdeploy.Options{Client: client, Out: stdout, Poll: 100 * time.Millisecond, Wait: time.Minute}
	for i, title := range []string{"first deploy: the function does not exist yet", "second deploy: the same file and package again"} {
		fmt.Fprintf(stdout, "\n== %s\n", title)
		before := len(em.Calls())
		res, err := scfdeploy.Deploy(ctx, spec, zipPath, o)
		if err != nil {
			fmt.Fprintf(stderr, "deploy: %v\n", err)
			return 1
		}
		var writes []string
		for _, c := range em.Calls()[before:] {
			if c.Write() && c.Code == "" {
				writes = append(writes, c.Action)
			}
		}
		if len(writes) == 0 {
			fmt.Fprintln(stdout, "writes: 0")
		} else {
			fmt.Fprintf(stdout, "writes: %d (%s)\n", len(writes), strings.Join(writes, ", "))
		}
		if i == 0 && len(res.URLs) > 0 {
			fmt.Fprintf(stdout, "Function URL: %s (an address the emulator made up, as Tencent would; it serves nothing)\n", res.URLs[0])
		}
	}
	fmt.Fprintln(stdout, "\nlocal rehearsal done: make deploy does the same against Tencent once credentials are set (docs/deploy.md)")
	return 0
}
