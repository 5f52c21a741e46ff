package config

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCases lists the cases in testdata: every *.hcl file and every
// directory (loaded as one configuration). A name ending in _error must fail.
func goldenCases(t testing.TB) []string {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, e := range entries {
		switch {
		case e.IsDir() && e.Name() != "fuzz":
			cases = append(cases, e.Name())
		case !e.IsDir() && strings.HasSuffix(e.Name(), ".hcl"):
			cases = append(cases, strings.TrimSuffix(e.Name(), ".hcl"))
		}
	}
	return cases
}

// casePath is the path Load gets for a case: the file or the directory.
func casePath(name string) string {
	if info, err := os.Stat(filepath.Join("testdata", name)); err == nil && info.IsDir() {
		return filepath.Join("testdata", name)
	}
	return filepath.Join("testdata", name+".hcl")
}

// caseOptions reads "# test-var: name=value" and "# test-env: NAME=value"
// comment lines from the case's files, standing in for --var and the
// environment.
func caseOptions(t testing.TB, path string) Options {
	files := []string{path}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		files, _ = filepath.Glob(filepath.Join(path, "*.hcl"))
	}
	opts := Options{Vars: map[string]string{}}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(src))
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "# test-var: "); ok {
				name, value, _ := strings.Cut(v, "=")
				opts.Vars[name] = value
			}
			if v, ok := strings.CutPrefix(line, "# test-env: "); ok {
				opts.Environ = append(opts.Environ, v)
			}
		}
	}
	return opts
}

func testdataRoot(t testing.TB) string {
	root, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// runCase loads a case and renders what the golden file holds: the dump of
// Desired for a valid case (with its warnings), the diagnostics otherwise.
func runCase(t testing.TB, name string) string {
	path := casePath(name)
	d, _, diags := Load([]string{path}, caseOptions(t, path))
	root := testdataRoot(t)
	wantErr := strings.HasSuffix(name, "_error")
	switch {
	case wantErr && !diags.HasErrors():
		t.Errorf("%s: want errors, got none", name)
	case !wantErr && diags.HasErrors():
		t.Errorf("%s: unexpected errors:\n%s", name, diagText(diags, root))
	case diags.HasErrors() && d != nil:
		t.Errorf("%s: Desired must be nil when there are errors", name)
	case !diags.HasErrors() && d == nil:
		t.Errorf("%s: Desired is nil without errors", name)
	}
	if d == nil {
		return diagText(diags, root)
	}
	out := dump(d, root)
	if len(diags) > 0 {
		out += "\n" + diagText(diags, root)
	}
	return out
}

func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	var valid, invalid int
	for _, name := range cases {
		if strings.HasSuffix(name, "_error") {
			invalid++
		} else {
			valid++
		}
		t.Run(name, func(t *testing.T) {
			got := runCase(t, name)
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -run TestGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, golden, got, want)
			}
		})
	}
	if invalid < 30 || valid < 7 {
		t.Errorf("testdata has %d error cases and %d valid cases; want at least 30 and 7", invalid, valid)
	}
}

// TestGoldenFilesHaveCases catches a golden file left behind by a removed case.
func TestGoldenFilesHaveCases(t *testing.T) {
	have := map[string]bool{}
	for _, c := range goldenCases(t) {
		have[c] = true
	}
	goldens, _ := filepath.Glob("testdata/*.golden")
	for _, g := range goldens {
		if name := strings.TrimSuffix(filepath.Base(g), ".golden"); !have[name] {
			t.Errorf("%s has no case", g)
		}
	}
}
