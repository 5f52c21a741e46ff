package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	formatted = `gpustack "a" {
  version = "v2.2.3"
  volume "data" { name = "a-data" }
}
`
	unformatted = `gpustack "b" {
version="v2.2.3"
      port = 8081
  volume "data" { name = "b-data" }
}
`
	broken = `gpustack "c" {
  version = "v2.2.3"
`
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runFmtArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runFmt(context.Background(), stdio{out: &out, err: &errOut, environ: []string{"NO_COLOR=1"}}, args)
	return code, out.String(), errOut.String()
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFmtCheckChangesNothing(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.hcl": formatted, "b.hcl": unformatted, "notes.txt": "x"})
	code, out, _ := runFmtArgs(t, "-f", dir, "--check")
	if code != exitError || out != filepath.Join(dir, "b.hcl")+"\n" {
		t.Errorf("fmt --check: exit %d, listed %q; want 1 and only b.hcl", code, out)
	}
	if read(t, filepath.Join(dir, "b.hcl")) != unformatted {
		t.Error("fmt --check changed b.hcl")
	}
	code, out, _ = runFmtArgs(t, "-f", filepath.Join(dir, "a.hcl"), "--check")
	if code != exitOK || out != "" {
		t.Errorf("fmt --check on a formatted file: exit %d, listed %q; want 0 and nothing", code, out)
	}
}

func TestFmtRewrites(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.hcl": formatted, "b.hcl": unformatted})
	b := filepath.Join(dir, "b.hcl")
	// A file named twice, also through its directory, is formatted once.
	code, out, errOut := runFmtArgs(t, "-f", b, "-f", dir)
	if code != exitOK || out != b+"\n" {
		t.Fatalf("fmt: exit %d, listed %q (%s); want 0 and b.hcl", code, out, errOut)
	}
	want := "gpustack \"b\" {\n  version = \"v2.2.3\"\n  port    = 8081\n  volume \"data\" { name = \"b-data\" }\n}\n"
	if got := read(t, b); got != want {
		t.Errorf("b.hcl formatted as\n%s\nwant\n%s", got, want)
	}
	if read(t, filepath.Join(dir, "a.hcl")) != formatted {
		t.Error("a formatted file was changed")
	}
	if st, err := os.Stat(b); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("mode after rewrite: %v %v, want 0640 kept", st.Mode().Perm(), err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	if code, out, _ := runFmtArgs(t, "-f", dir, "--check"); code != exitOK || out != "" {
		t.Errorf("fmt --check after fmt: exit %d, listed %q", code, out)
	}
}

func TestFmtLeavesBrokenFilesAlone(t *testing.T) {
	dir := writeFiles(t, map[string]string{"b.hcl": unformatted, "c.hcl": broken})
	code, out, errOut := runFmtArgs(t, "-f", dir)
	if code != exitError || !strings.Contains(errOut, "c.hcl has syntax errors") {
		t.Errorf("fmt with a broken file: exit %d, stderr %q", code, errOut)
	}
	if read(t, filepath.Join(dir, "c.hcl")) != broken {
		t.Error("the broken file was changed")
	}
	if out != filepath.Join(dir, "b.hcl")+"\n" {
		t.Errorf("the other file was not formatted: listed %q", out)
	}
}

func TestFmtPaths(t *testing.T) {
	dir := writeFiles(t, map[string]string{"notes.txt": "x"})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", filepath.Join(dir, "notes.txt")}, "does not end in .hcl"},
		{[]string{"-f", dir}, "holds no .hcl file"},
		{[]string{"-f", filepath.Join(dir, "missing.hcl")}, "no such file"},
	} {
		code, _, errOut := runFmtArgs(t, tt.args...)
		if code != exitError || !strings.Contains(errOut, tt.want) {
			t.Errorf("fmt %v: exit %d, stderr %q; want 1 and %q", tt.args, code, errOut, tt.want)
		}
	}
}
