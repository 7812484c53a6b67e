package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the settings table in docs/reference.md from the declarations")

// root is the repository root, seen from this package.
var root = filepath.Join("..", "..")

const (
	tableBegin = "<!-- settings table: generated from internal/config/settings.go; edit the settings there, then run: go test ./internal/config -run TestDocsTable -update -->"
	tableEnd   = "<!-- end of the generated settings table -->"
)

// renderTable is the Markdown docs/reference.md shows between tableBegin
// and tableEnd: one row per setting, in the table's order.
func renderTable() string {
	var b strings.Builder
	b.WriteString("A duration is written as Go writes it (`10s`, `1m30s`, `2h`) or in whole seconds (`90`).\n\n")
	b.WriteString("| Variable | Default | Values | Meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.name, cell(defaultCell(s)), cell(s.kind.form), cell(meaning(s)))
	}
	return b.String()
}

// defaultCell says what an unset variable means: its default, then whether
// it is required, what unset means beyond the default, the dev default.
func defaultCell(s setting) string {
	out := "—"
	if s.def != "" {
		out = "`" + s.def + "`"
	}
	var notes []string
	if s.required != "" {
		notes = append(notes, "required")
	}
	if s.unset != "" {
		notes = append(notes, s.unset)
	}
	if s.devDef != "" {
		notes = append(notes, "`"+s.devDef+"` in dev mode")
	}
	if len(notes) > 0 {
		out += " (" + strings.Join(notes, "; ") + ")"
	}
	return out
}

func meaning(s setting) string {
	m := s.doc
	if s.dev {
		m = "dev mode only: " + m
	}
	if s.secret {
		m += "; **secret**: never shown (logs, errors, the deploy plan)"
	}
	return m
}

// cell keeps a value inside its table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// The configuration table of docs/reference.md is the declarations',
// rendered: a setting added, changed or removed in settings.go shows there,
// or this test fails naming it (-update rewrites the table).
func TestDocsTable(t *testing.T) {
	path := filepath.Join(root, "docs", "reference.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, tableBegin+"\n"), strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: no generated settings table (the lines %q and %q around it)", path, tableBegin, tableEnd)
	}
	i += len(tableBegin) + 1
	got, want := doc[i:j], renderTable()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(doc[:i]+want+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the settings table of %s", path)
		return
	}
	gotLines, wantLines := strings.Split(got, "\n"), strings.Split(want, "\n")
	for _, l := range wantLines {
		if !slices.Contains(gotLines, l) {
			t.Errorf("%s lacks the row\n%s", path, l)
		}
	}
	for _, l := range gotLines {
		if !slices.Contains(wantLines, l) {
			t.Errorf("%s has the row no setting declares\n%s", path, l)
		}
	}
	t.Errorf("the settings table of %s is not what settings.go declares: run go test ./internal/config -run TestDocsTable -update", path)
}

// settingName matches what looks like one of the broker's settings: a name
// that starts as a declared one does (CAR_, AUTH_, QUEUE_, …).
func settingName() *regexp.Regexp {
	var prefixes []string
	for _, s := range settings {
		p, _, _ := strings.Cut(s.name, "_")
		if !slices.Contains(prefixes, p) {
			prefixes = append(prefixes, p)
		}
	}
	return regexp.MustCompile(`\b(?:` + strings.Join(prefixes, "|") + `)_[A-Z0-9_]*[A-Z0-9]\b`)
}

// The README and the docs name only settings that exist: a setting renamed
// or removed in settings.go fails here, naming the file and the old name.
func TestDocsNameDeclaredSettings(t *testing.T) {
	declared := map[string]bool{}
	for _, s := range settings {
		declared[s.name] = true
	}
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	if len(files) < 2 {
		t.Fatalf("no docs found: %v", files)
	}
	re := settingName()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, name := range re.FindAllString(string(b), -1) {
			if !declared[name] && !seen[name] {
				seen[name] = true
				t.Errorf("%s names %s, which is no setting (internal/config/settings.go)", f, name)
			}
		}
	}
}

// The deploy guide's .env example (docs/deploy.md) lists every setting the
// function reads, set or commented out, so that a new one is found there.
func TestDeployGuideListsEverySetting(t *testing.T) {
	path := filepath.Join(root, "docs", "deploy.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(b), "\n# The broker\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || block == "" {
		t.Fatalf("%s: no .env example with a \"# The broker\" part", path)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "# ")
		if name, _, ok := strings.Cut(line, "="); ok {
			listed[name] = true
		}
	}
	for _, k := range Keys {
		if !listed[k] {
			t.Errorf("%s: the .env example does not list %s (as %s=… or # %s=…)", path, k, k, k)
		}
	}
}

// The docs that say what dev mode ignores from the shell name every
// setting declared sealed (a family by its wildcard, as `CAR_ALLOWED_*`),
// and no other setting: a setting newly sealed, or no longer, fails here.
func TestDocsNameTheDevSealedSettings(t *testing.T) {
	sealed := map[string]bool{}
	for _, n := range DevSealed {
		sealed[n] = true
	}
	for file, marker := range map[string]string{
		"../../docs/reference.md": "It is sealed from your shell's production settings",
		"../../docs/security.md":  "**Dev mode is sealed.**",
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		i := strings.Index(doc, marker)
		if i < 0 {
			t.Fatalf("%s: no %q", file, marker)
		}
		// The sentence that lists them ends at the first ")" after it.
		j := strings.Index(doc[i:], ")")
		if j < 0 {
			t.Fatalf("%s: the list after %q does not end", file, marker)
		}
		list := doc[i : i+j]
		named := func(n string) bool {
			if strings.Contains(list, "`"+n+"`") {
				return true
			}
			for _, w := range regexp.MustCompile("`([A-Z_]+)_\\*`").FindAllStringSubmatch(list, -1) {
				if strings.HasPrefix(n, w[1]+"_") {
					return true
				}
			}
			return false
		}
		for n := range sealed {
			if !named(n) {
				t.Errorf("%s: dev mode ignores %s from the shell (config's sealed settings), but the list after %q does not name it", file, n, marker)
			}
		}
		for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9_]+)`").FindAllStringSubmatch(list, -1) {
			if _, known := declared(m[1]); known && !sealed[m[1]] {
				t.Errorf("%s: the list after %q names %s, which dev mode reads", file, marker, m[1])
			}
		}
	}
}

func declared(name string) (setting, bool) {
	for _, s := range settings {
		if s.name == name {
			return s, true
		}
	}
	return setting{}, false
}
