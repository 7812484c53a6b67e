package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tmp := t.TempDir()
	bin := make([]byte, 64)
	copy(bin, "\x7fELF\x02\x01")
	bin[18] = 0x3e
	binPath := filepath.Join(tmp, "main")
	if err := os.WriteFile(binPath, bin, 0o644); err != nil {
		t.Fatal(err)
	}
	// The boot file that ships.
	bootPath := filepath.Join("..", "..", "..", "function", "scf_bootstrap")

	var zips [2][]byte
	for i := range zips {
		dir := filepath.Join(tmp, "run", string(rune('a'+i)), "function")
		zipPath := filepath.Join(tmp, "run", string(rune('a'+i)), "function.zip")
		var stdout, stderr bytes.Buffer
		code := run([]string{"-bin", binPath, "-bootstrap", bootPath, "-dir", dir, "-zip", zipPath}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "sha256 ") {
			t.Errorf("stdout %q does not report the zip's sha256", stdout.String())
		}
		for _, name := range []string{"main", "scf_bootstrap"} {
			st, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode() != 0o755 {
				t.Errorf("%s: mode %v, want -rwxr-xr-x", name, st.Mode())
			}
		}
		var err error
		if zips[i], err = os.ReadFile(zipPath); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(zips[0], zips[1]) {
		t.Error("two runs gave different zips")
	}
}

func TestRunErrors(t *testing.T) {
	tmp := t.TempDir()
	notELF := filepath.Join(tmp, "main")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-nope"}, 2, "flag provided but not defined"},
		{[]string{"extra"}, 2, "unexpected arguments"},
		{[]string{"-bin", filepath.Join(tmp, "missing")}, 1, "no such file"},
		{[]string{"-bin", notELF, "-dir", "", "-zip", ""}, 1, "GOOS=linux"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		if code := run(c.args, &stdout, &stderr); code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("run(%q) = %d, %q; want %d and %q", c.args, code, stderr.String(), c.code, c.want)
		}
	}
}
