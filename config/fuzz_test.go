package config

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, and
// whatever it returns must be consistent.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.hcl")
	more, _ := filepath.Glob("testdata/*/*.hcl")
	for _, path := range append(seeds, more...) {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	opts := Options{
		Vars:    map[string]string{"token": "fuzz-secret", "tag": "v2.2.3"},
		Environ: []string{EnvVarPrefix + "http_port=8080"},
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		d, parser, diags := load([]source{{name: "testdata/fuzz.hcl", src: src}}, opts)
		if parser == nil || d == nil {
			t.Fatal("load must always return a parser and a value")
		}
		for _, diag := range diags {
			if diag.Summary == "" {
				t.Fatalf("diagnostic without summary: %#v", diag)
			}
			if diag.Severity == hcl.DiagError && diag.Detail == "" {
				t.Fatalf("error without detail: %s", diag.Summary)
			}
		}
		if diags.HasErrors() {
			return
		}
		if !sort.SliceIsSorted(d.Deployments, func(i, j int) bool {
			return d.Deployments[i].Host < d.Deployments[j].Host ||
				d.Deployments[i].Host == d.Deployments[j].Host && d.Deployments[i].Name < d.Deployments[j].Name
		}) {
			t.Fatal("deployments not sorted")
		}
		for _, x := range d.Deployments {
			if x.Version == "" || x.Data.Path != DataPath || x.Data.Source() == "" || x.Port < 1 || x.Port > 65535 ||
				x.Cache != nil && (x.Cache.Path == "" || x.Cache.Source() == "") {
				t.Fatalf("invalid deployment accepted: %+v", x)
			}
		}
	})
}
