// Command pack stages the SCF code package and zips it reproducibly:
//
//	go run ./internal/cmd/pack -bin dist/main -bootstrap function/scf_bootstrap \
//		-dir dist/function -zip dist/function.zip
//
// Flags:
//
//	-bin        the function binary, built for linux/amd64 (default dist/main)
//	-bootstrap  the web-function boot file (default function/scf_bootstrap)
//	-dir        the folder to stage main and scf_bootstrap in, mode 0755 both;
//	            serverless.yml's src points here and the deploy CLI zips it.
//	            It must hold nothing else. Empty: do not stage. (default dist/function)
//	-zip        the zip to write, for console or COS upload; two runs on the same
//	            inputs give identical bytes. Empty: no zip. (default dist/function.zip)
//
// Both files go into every package: an event function (runtime Go1, handler
// main) ignores scf_bootstrap, a web function runs it.
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"

	"carbroker/internal/deploy/pack"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "dist/main", "function binary (linux/amd64)")
	boot := fs.String("bootstrap", "function/scf_bootstrap", "web-function boot file")
	dir := fs.String("dir", "dist/function", "folder to stage the package in (empty: skip)")
	zipPath := fs.String("zip", "dist/function.zip", "zip file to write (empty: skip)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pack: unexpected arguments %q\n", fs.Args())
		return 2
	}

	files, err := pack.Load(*bin, *boot)
	if err != nil {
		fmt.Fprintf(stderr, "pack: %v\n", err)
		return 1
	}
	if *dir != "" {
		if err := pack.Stage(*dir, files); err != nil {
			fmt.Fprintf(stderr, "pack: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "staged %s: %s %d bytes, %s %d bytes\n", *dir,
			files[0].Name, len(files[0].Data), files[1].Name, len(files[1].Data))
	}
	if *zipPath != "" {
		if err := pack.Zip(*zipPath, files); err != nil {
			fmt.Fprintf(stderr, "pack: %v\n", err)
			return 1
		}
		b, err := os.ReadFile(*zipPath)
		if err != nil {
			fmt.Fprintf(stderr, "pack: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s: %d bytes, sha256 %x\n", *zipPath, len(b), sha256.Sum256(b))
	}
	return 0
}
