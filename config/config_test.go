package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// testSecret is the value of every sensitive variable in testdata.
const testSecret = "hunter2-s3cr3t-token"

func TestEra(t *testing.T) {
	v051, _ := catalog.Default().Release("v0.5.1")
	v223, _ := catalog.Default().Release("v2.2.3")
	tests := []struct {
		tag  string
		rel  *catalog.Release
		want catalog.Engine
	}{
		{"v0.5.1", &v051, catalog.EngineSQLite},
		{"v2.2.3", &v223, catalog.EngineEmbeddedPostgres},
		{"v0.5.1-cpu", nil, catalog.EngineSQLite},
		{"main-cpu", nil, catalog.EngineSQLite},
		{"latest-rocm", nil, catalog.EngineSQLite},
		{"v0.7", nil, catalog.EngineSQLite},
		{"v0.7-cpu", nil, catalog.EngineSQLite},
		{"v0.7-dev", nil, catalog.EngineSQLite},
		{"0.3.2", nil, catalog.EngineSQLite},
		{"v0.9.9", nil, catalog.EngineSQLite},
		{"main", nil, catalog.EngineEmbeddedPostgres},
		{"latest", nil, catalog.EngineEmbeddedPostgres},
		{"dev", nil, catalog.EngineEmbeddedPostgres},
		{"dev-47277d7", nil, catalog.EngineEmbeddedPostgres},
		{"v2.2", nil, catalog.EngineEmbeddedPostgres},
		{"v2.2-dev", nil, catalog.EngineEmbeddedPostgres},
		{"v2.1-dev-47277d7", nil, catalog.EngineEmbeddedPostgres},
		{"v3.0.0", nil, catalog.EngineEmbeddedPostgres},
	}
	for _, tt := range tests {
		if got := Era(catalog.ClassifyTag(tt.tag), tt.rel); got != tt.want {
			t.Errorf("Era(%q) = %s, want %s", tt.tag, got, tt.want)
		}
	}
}

func TestLoadPaths(t *testing.T) {
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := filepath.Join(tmp, "deploy.yaml")
	if err := os.WriteFile(yaml, []byte("x: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	zeta := map[string]string{"zeta_port": "9090"}
	tests := []struct {
		name        string
		paths       []string
		wantSummary string // of the first error; empty for success
		wantNames   []string
		vars        map[string]string
	}{
		{"no paths", nil, "No configuration files", nil, nil},
		{"missing file", []string{filepath.Join(tmp, "nope.hcl")}, "Cannot read configuration", nil, nil},
		{"not hcl", []string{yaml}, "Not an HCL file", nil, nil},
		{"empty dir", []string{empty}, "No configuration files", nil, nil},
		{"files in any order", []string{"testdata/multi/30-alpha.hcl", "testdata/multi/20-zeta.hcl", "testdata/multi/10-vars.hcl"}, "", []string{"alpha", "zeta"}, zeta},
		{"file given twice", []string{"testdata/minimal.hcl", "testdata/minimal.hcl"}, "", []string{"main"}, nil},
		{"file and its directory", []string{"testdata/multi/20-zeta.hcl", "testdata/multi"}, "", []string{"alpha", "zeta"}, zeta},
		{"two files", []string{"testdata/minimal.hcl", "testdata/full.hcl"}, "", []string{"main", "prod"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, parser, diags := Load(tt.paths, Options{Vars: tt.vars})
			if parser == nil {
				t.Fatal("nil parser")
			}
			if tt.wantSummary != "" {
				if !diags.HasErrors() || diags[0].Summary != tt.wantSummary {
					t.Fatalf("want error %q, got %v", tt.wantSummary, diags)
				}
				if d != nil {
					t.Fatal("Desired must be nil on error")
				}
				return
			}
			if diags.HasErrors() {
				t.Fatalf("unexpected errors: %v", diags)
			}
			var names []string
			for _, x := range d.Deployments {
				names = append(names, x.Name)
				if x.Host != DefaultHost {
					t.Errorf("%s: host %q, want %q", x.Name, x.Host, DefaultHost)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Errorf("deployments %v, want %v", names, tt.wantNames)
			}
		})
	}
}

// TestOptionsCatalog: a catalog passed in Options replaces the default.
func TestOptionsCatalog(t *testing.T) {
	src := []byte(`gpustack "next" {
  version = "v2.3.0"
  volume "data" { name = "next-data" }
}
`)
	_, _, diags := load([]source{{"next.hcl", src}}, Options{})
	if !diags.HasErrors() || diags[0].Summary != "Unknown release" {
		t.Fatalf("default catalog: want Unknown release, got %v", diags)
	}
	cat, err := catalog.Default().WithFile("testdata/releases.json")
	if err != nil {
		t.Fatal(err)
	}
	d, _, diags := load([]source{{"next.hcl", src}}, Options{Catalog: cat})
	if diags.HasErrors() {
		t.Fatalf("extended catalog: %v", diags)
	}
	if got := d.Deployments[0].Era; got != catalog.EngineEmbeddedPostgres {
		t.Errorf("era %s", got)
	}
}

// TestSensitiveValuesKept: a sensitive value is hidden, not lost; the
// executor needs it.
func TestSensitiveValuesKept(t *testing.T) {
	path := casePath("sensitive")
	d, _, diags := Load([]string{path}, caseOptions(t, path))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	secure := d.Deployments[0]
	if a := secure.Args[1]; !a.Sensitive || a.S != testSecret {
		t.Errorf("args[1] = %+v, want the secret marked sensitive", a)
	}
	if u := secure.DatabaseURL; !u.Sensitive || u.S != "postgresql://root:"+testSecret+"@db/gpustack" || secure.DatabaseScheme != SchemePostgreSQL {
		t.Errorf("database_url = %+v (%s), want the derived value marked sensitive", u, secure.DatabaseScheme)
	}
	if e := secure.Env["PLAIN"]; e.Sensitive || e.S != "visible" {
		t.Errorf("env PLAIN = %+v, want a plain value", e)
	}
	if e := secure.Env["HF_TOKEN"]; !e.Sensitive || e.String() != "(sensitive)" {
		t.Errorf("env HF_TOKEN = %+v, want sensitive", e)
	}
}

// TestSecretsNeverShown renders every case the way the CLI would (the dump,
// the one-line diagnostics and HCL's snippet writer) and checks the golden
// files: testSecret, the value testdata gives its sensitive variables (by
// --var, environment and default), appears nowhere.
func TestSecretsNeverShown(t *testing.T) {
	for _, name := range goldenCases(t) {
		path := casePath(name)
		d, parser, diags := Load([]string{path}, caseOptions(t, path))
		var out bytes.Buffer
		if d != nil {
			out.WriteString(dump(d, ""))
		}
		out.WriteString(diagText(diags, ""))
		w := hcl.NewDiagnosticTextWriter(&out, parser.Files(), 100, false)
		if err := w.WriteDiagnostics(diags); err != nil {
			t.Fatal(err)
		}
		text := out.String()
		// Source snippets quote the files, which may hold the secret in a
		// "# test-var:" line or a default: drop quoted source lines.
		var shown []string
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, "# test-var:") || strings.Contains(line, "default   =") {
				continue
			}
			shown = append(shown, line)
		}
		if strings.Contains(strings.Join(shown, "\n"), testSecret) {
			t.Errorf("%s: the secret is shown:\n%s", name, text)
		}
	}
	goldens, _ := filepath.Glob("testdata/*.golden")
	for _, g := range goldens {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(testSecret)) {
			t.Errorf("%s contains the secret", g)
		}
	}
}

// TestErrorsPointAtSource: every error has a summary and a detail, and all
// but the few about the command line point at a range.
func TestErrorsPointAtSource(t *testing.T) {
	noLocation := map[string]bool{"Value for undeclared variable": true, "No deployment": true}
	for _, name := range goldenCases(t) {
		path := casePath(name)
		_, _, diags := Load([]string{path}, caseOptions(t, path))
		for _, d := range diags {
			if d.Summary == "" || d.Detail == "" {
				t.Errorf("%s: diagnostic without summary or detail: %+v", name, d)
			}
			if d.Subject == nil && !noLocation[d.Summary] {
				t.Errorf("%s: %q has no source range", name, d.Summary)
			}
		}
	}
}

// TestWarningsKept: a configuration with only warnings loads.
func TestWarningsKept(t *testing.T) {
	d, _, diags := Load([]string{"testdata/ports.hcl"}, Options{})
	if d == nil || diags.HasErrors() || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning {
		t.Fatalf("want a Desired and one warning, got %v", diags)
	}
}
