// Package deploytest is the deployer's test kit, shared by the tests of
// scfdeploy, scfemu and the deploy command: an SCF API emulator served for
// one test, the environment of a deploy (whose secrets no output may
// show), and the smallest package the emulator accepts.
package deploytest

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	"carbroker/internal/deploy/pack"
	"carbroker/internal/deploy/scfemu"
)

// Secrets are the secret values Env sets: none may appear in any output.
var Secrets = []string{
	"ticket-secret-0123456789abcdefghijklmnopqrstuvwxyz",
	"compat-salt-0123456789",
	"redis-password-42",
	scfemu.DefaultSecretKey,
}

// Env returns the environment of a deploy of serverless.yml to endpoint
// (SCF_API_ENDPOINT: a scheme and host): the emulator's credentials, what
// the file requires, and a secret in each form the deployer masks.
func Env(endpoint string) map[string]string {
	return map[string]string{
		"TENCENTCLOUD_SECRETID":  scfemu.DefaultSecretID,
		"TENCENTCLOUD_SECRETKEY": scfemu.DefaultSecretKey,
		"SCF_API_ENDPOINT":       endpoint,
		"SCF_ROLE":               "carbroker-car",
		"CAR_PROJECT_ID":         "cap-12345",
		"AUTH_MODE":              "ticket",
		"AUTH_SECRET":            Secrets[0],
		"COMPAT_SIGN_SALT":       Secrets[1],
		"QUEUE_REDIS_URL":        "redis://broker:" + Secrets[2] + "@10.0.0.5:6379/0",
		"CORS_ALLOW_ORIGINS":     "https://app.example.com",
		"JWT_SECRET":             "", // set but empty: left out
	}
}

// Listen serves em on 127.0.0.1 until t ends and returns its endpoint,
// http://127.0.0.1:PORT.
func Listen(t testing.TB, em *scfemu.Emulator) string {
	t.Helper()
	endpoint, stop, err := em.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return "http://" + endpoint
}

// ELFHeader is the smallest ELF executable header for machine (62:
// EM_X86_64) that debug/elf, and so the emulator's package check, accepts.
func ELFHeader(machine uint16) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[16:], 2) // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], machine)
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint16(h[52:], 64)
	binary.LittleEndian.PutUint16(h[54:], 56)
	binary.LittleEndian.PutUint16(h[58:], 64)
	return h
}

// TinyZip writes a package the emulator accepts (a linux/amd64 ELF header
// as main, and scf_bootstrap), a few hundred bytes, and returns its path:
// tests of the deployer's logic upload it instead of the 6 MB package.
// extra changes its hash.
func TinyZip(t testing.TB, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "function.zip")
	files := []pack.File{{Name: pack.Binary, Data: append(ELFHeader(62), extra...)}, {Name: pack.Bootstrap, Data: []byte("#!/bin/bash\nexec ./main\n")}}
	if err := pack.Zip(p, files); err != nil {
		t.Fatal(err)
	}
	return p
}
