package pack_test

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"carbroker/internal/deploy/pack"
)

// fakeELF is the smallest header CheckBinary accepts, plus a body.
func fakeELF(body string) []byte {
	h := make([]byte, 20)
	copy(h, "\x7fELF")
	h[4], h[5] = 2, 1 // ELFCLASS64, little-endian
	h[18] = 0x3e      // EM_X86_64
	return append(h, body...)
}

const bootstrap = "#!/bin/bash\ncd \"$(dirname \"$0\")\" || exit 1\nexec \"$PWD/main\" -listen 0.0.0.0:9000\n"

// writeInputs writes a fake binary and boot file into a temp dir.
func writeInputs(t *testing.T, bin []byte, boot string) (binPath, bootPath string) {
	t.Helper()
	dir := t.TempDir()
	binPath, bootPath = filepath.Join(dir, "main"), filepath.Join(dir, "scf_bootstrap")
	if err := os.WriteFile(binPath, bin, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bootPath, []byte(boot), 0o600); err != nil {
		t.Fatal(err)
	}
	return binPath, bootPath
}

func TestZipIsReproducible(t *testing.T) {
	bin := fakeELF(strings.Repeat("not really a program ", 500))
	binPath, bootPath := writeInputs(t, bin, bootstrap)
	out := t.TempDir()

	var zips [2][]byte
	for i := range zips {
		files, err := pack.Load(binPath, bootPath)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(out, "run"+string(rune('a'+i)), "function.zip")
		if err := pack.Zip(path, files); err != nil {
			t.Fatal(err)
		}
		if zips[i], err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
		// Touch the inputs between runs: only their content may matter.
		mtime := time.Date(2020+i, 1, 2, 3, 4, 5, 0, time.UTC)
		if err := os.Chtimes(binPath, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(zips[0], zips[1]) {
		t.Fatal("two runs gave different zips")
	}
	checkZip(t, zips[0], map[string][]byte{"main": bin, "scf_bootstrap": []byte(bootstrap)})
}

// checkZip checks the archive holds exactly want, sorted, as regular 0755
// files without extra fields, deflated, and with content that round-trips.
func checkZip(t *testing.T, archive []byte, want map[string][]byte) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if m := f.Mode(); m != 0o755 || !m.IsRegular() {
			t.Errorf("%s: mode %v, want -rwxr-xr-x", f.Name, m)
		}
		if f.CreatorVersion>>8 != 3 { // Unix, so unzip honours the mode
			t.Errorf("%s: creator %d, want Unix (3)", f.Name, f.CreatorVersion>>8)
		}
		if f.Method != zip.Deflate {
			t.Errorf("%s: method %d, want deflate", f.Name, f.Method)
		}
		if len(f.Extra) != 0 {
			t.Errorf("%s: extra field %x, want none", f.Name, f.Extra)
		}
		if y := f.Modified.Year(); y != 1980 {
			t.Errorf("%s: modified %v, want 1980-01-01", f.Name, f.Modified)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[f.Name]) {
			t.Errorf("%s: content does not round-trip", f.Name)
		}
		if f.Name == pack.Bootstrap {
			if !bytes.HasPrefix(got, []byte("#!/bin/bash\n")) || bytes.IndexByte(got, '\r') >= 0 {
				t.Errorf("%s: want a #!/bin/bash script with LF endings, got %q", f.Name, got)
			}
		}
	}
	if strings.Join(names, ",") != "main,scf_bootstrap" {
		t.Errorf("entries %v, want exactly [main scf_bootstrap] in that order", names)
	}
}

func TestWriteZipSortsEntries(t *testing.T) {
	var a, b bytes.Buffer
	files := []pack.File{{Name: "scf_bootstrap", Data: []byte(bootstrap)}, {Name: "main", Data: fakeELF("x")}}
	if err := pack.WriteZip(&a, files); err != nil {
		t.Fatal(err)
	}
	if err := pack.WriteZip(&b, []pack.File{files[1], files[0]}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("input order changed the zip")
	}
	checkZip(t, a.Bytes(), map[string][]byte{"main": files[1].Data, "scf_bootstrap": files[0].Data})
	if err := pack.WriteZip(io.Discard, []pack.File{files[0], files[0]}); err == nil {
		t.Fatal("duplicate entries accepted")
	}
}

func TestStage(t *testing.T) {
	bin := fakeELF("program")
	binPath, bootPath := writeInputs(t, bin, bootstrap)
	files, err := pack.Load(binPath, bootPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dist", "function")
	for range 2 { // staging again over a previous run is fine
		if err := pack.Stage(dir, files); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string][]byte{"main": bin, "scf_bootstrap": []byte(bootstrap)} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != 0o755 {
			t.Errorf("%s: mode %v, want -rwxr-xr-x", name, st.Mode())
		}
		got, _ := os.ReadFile(filepath.Join(dir, name))
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs", name)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("staged %d entries, want 2 (no temp files left)", len(entries))
	}

	// Anything else in the folder would be deployed: refuse, delete nothing.
	stray := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(stray, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pack.Stage(dir, files); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("Stage with a stray file: %v, want an error naming it", err)
	}
	if _, err := os.Stat(stray); err != nil {
		t.Fatal("Stage deleted a file it did not write")
	}
}

func TestLoadRejects(t *testing.T) {
	darwin := fakeELF("x")
	copy(darwin, "\xcf\xfa\xed\xfe") // Mach-O
	arm := fakeELF("x")
	arm[18] = 0xb7 // EM_AARCH64
	cases := []struct {
		name string
		bin  []byte
		boot string
		want string
	}{
		{"mach-o binary", darwin, bootstrap, "not an ELF"},
		{"arm64 binary", arm, bootstrap, "x86-64"},
		{"empty binary", nil, bootstrap, "not an ELF"},
		{"sh shebang", fakeELF("x"), "#!/bin/sh\nexec ./main\n", "#!/bin/bash"},
		{"CRLF", fakeELF("x"), "#!/bin/bash\r\nexec ./main\r\n", "#!/bin/bash"},
		{"CR inside", fakeELF("x"), "#!/bin/bash\nexec ./main\r\n", "CR"},
		{"no final newline", fakeELF("x"), "#!/bin/bash\nexec ./main", "newline"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			binPath, bootPath := writeInputs(t, c.bin, c.boot)
			_, err := pack.Load(binPath, bootPath)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestRepoBootstrap checks the boot file that ships, as git stores it.
func TestRepoBootstrap(t *testing.T) {
	path := filepath.Join("..", "..", "..", "function", "scf_bootstrap")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pack.CheckBootstrap(b); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, want := range []string{"-listen 0.0.0.0:9000", "TRUSTED_PROXY_CIDRS", "exec "} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s does not contain %q", path, want)
		}
	}
	// What the platform's proxy forwards as the client address is not
	// documented: the boot file trusts no proxy by itself (the function's
	// environment may).
	if bytes.Contains(b, []byte("export TRUSTED_PROXY_CIDRS")) {
		t.Errorf("%s sets a trusted proxy by default", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o111 != 0o111 {
		t.Errorf("%s: mode %v, want executable (chmod 0755; git records it)", path, st.Mode())
	}
}
