// Package pack builds the SCF code package: the function binary "main" and the
// web-function boot file "scf_bootstrap", both mode 0755 at the root. It
// stages them in a folder (what serverless.yml's src points at; the deploy CLI
// zips it) and writes the same two files as a zip for console or COS upload.
//
// The zip is reproducible: entries sorted by name, a fixed MS-DOS modification
// time (1980-01-01 00:00), Unix mode 0755 in the external attributes, deflate,
// and no extra fields, so the same inputs always give the same bytes.
package pack

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Names of the files at the root of the code package.
const (
	Binary    = "main"          // the handler of a Go1 event function
	Bootstrap = "scf_bootstrap" // the boot file of a web function
)

// Mode is the mode of every file in the package: SCF must be able to execute both.
const Mode = 0o755

// Shebang is how the boot file must start: SCF runs it as a bash script.
const Shebang = "#!/bin/bash\n"

// File is one file of the code package.
type File struct {
	Name string
	Data []byte
}

// Load reads the binary and the boot file and checks what SCF needs of them:
// the binary is a linux/amd64 ELF executable (SCF runs CentOS on x86_64 only),
// the boot file starts with Shebang, has LF line endings only and ends in a
// newline. The files come back sorted by name.
func Load(binPath, bootstrapPath string) ([]File, error) {
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, err
	}
	if err := CheckBinary(bin); err != nil {
		return nil, fmt.Errorf("%s: %w", binPath, err)
	}
	boot, err := os.ReadFile(bootstrapPath)
	if err != nil {
		return nil, err
	}
	if err := CheckBootstrap(boot); err != nil {
		return nil, fmt.Errorf("%s: %w", bootstrapPath, err)
	}
	return []File{{Name: Binary, Data: bin}, {Name: Bootstrap, Data: boot}}, nil
}

// CheckBinary reports whether b looks like a 64-bit little-endian x86-64 ELF
// file, so that a binary built for the wrong GOOS or GOARCH fails here rather
// than at the first invocation.
func CheckBinary(b []byte) error {
	switch {
	case len(b) < 20 || string(b[:4]) != "\x7fELF":
		return errors.New("not an ELF binary: build it with GOOS=linux GOARCH=amd64")
	case b[4] != 2 || b[5] != 1: // EI_CLASS = ELFCLASS64, EI_DATA = little-endian
		return errors.New("not a 64-bit little-endian ELF binary: build it with GOARCH=amd64")
	case b[18] != 0x3e || b[19] != 0: // e_machine = EM_X86_64
		return errors.New("not an x86-64 binary: SCF runs on x86_64 only, build it with GOARCH=amd64")
	}
	return nil
}

// CheckBootstrap reports whether b is a boot file SCF can run.
func CheckBootstrap(b []byte) error {
	switch {
	case !bytes.HasPrefix(b, []byte(Shebang)):
		return fmt.Errorf("must start with %q", Shebang)
	case bytes.IndexByte(b, '\r') >= 0:
		return errors.New("has CR characters: SCF needs LF line endings")
	case !bytes.HasSuffix(b, []byte("\n")):
		return errors.New("must end with a newline")
	}
	return nil
}

// Stage writes files into dir with mode 0755, creating dir if needed. The
// deploy CLI uploads everything in dir, so Stage refuses a dir that holds
// anything else; it never deletes what it did not write.
func Stage(dir string, files []File) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var stray []string
	for _, e := range entries {
		if !slices.ContainsFunc(files, func(f File) bool { return f.Name == e.Name() && e.Type().IsRegular() }) {
			stray = append(stray, e.Name())
		}
	}
	if len(stray) > 0 {
		return fmt.Errorf("%s holds %s, which would be deployed too: remove it first", dir, strings.Join(stray, ", "))
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.Name), f.Data, Mode); err != nil {
			return err
		}
	}
	return nil
}

// WriteZip writes files as a reproducible zip archive to w.
func WriteZip(w io.Writer, files []File) error {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	zw := zip.NewWriter(w)
	for i, f := range sorted {
		if i > 0 && f.Name == sorted[i-1].Name {
			return fmt.Errorf("duplicate entry %q", f.Name)
		}
		h := &zip.FileHeader{
			Name:   f.Name,
			Method: zip.Deflate,
			// MS-DOS date 1980-01-01, time 00:00:00, set directly: setting
			// Modified would add an extended-timestamp extra field.
			ModifiedDate: 1<<5 | 1,
		}
		h.SetMode(Mode)
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := fw.Write(f.Data); err != nil {
			return err
		}
	}
	return zw.Close()
}

// Zip writes files as a reproducible zip archive at path, replacing it atomically.
func Zip(path string, files []File) error {
	var buf bytes.Buffer
	if err := WriteZip(&buf, files); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFile(path, buf.Bytes(), 0o644)
}

// writeFile replaces path atomically with data, with mode whatever the umask.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
