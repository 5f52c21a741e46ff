package doctor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenInputs are the situations whose rendering is reviewed like code.
func goldenInputs(t *testing.T) map[string]Input {
	healthy := ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "running", 0, true)
	healthy.Health = "ok"
	hand := ctr("gpustack-hand", "gpustack/gpustack:main-cpu", "exited", 0, false)
	hand.Mounts = append(hand.Mounts, observe.Mount{Source: "gpustack-demo-cache", Destination: "/var/lib/gpustack-cache"})
	hand.Args = []string{"--disable-worker", "--cache-dir", "/var/lib/gpustack-cache", "--token", "abc123"}
	return map[string]Input{
		"seed_container": {Host: "default", Container: hand,
			Image: &Image{Ref: "gpustack/gpustack:main-cpu", Version: "main"},
			LogTail: append([]string{logLine("gpustack.cmd.start", "INFO", "GPUStack version: v0.0.0 (3f2c1a9)")},
				failedStart("(sqlite3.OperationalError) no such column: model_instances.resolved_path")...),
			Database: sqlite(t, "c45e397531d1", resolvedPathGone), Backups: []backup.Manifest{goodBackup},
			BackupDir: "/srv/backups/demo", Data: "gpustack-demo-data", Cache: "gpustack-demo-cache"},
		"latest_jumped": hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:latest", "running", 0, true),
			Image: &Image{Ref: "gpustack/gpustack:latest", Version: "v2.2.3"}, Database: pgData(false),
			LegacySQLite: &observe.Database{Status: observe.DBRead, Engine: catalog.EngineSQLite, Revision: "d19176de3b74", Tables: tablesAt(t, "d19176de3b74", nil)},
		}, "latest", ""),
		"healthy": hcl(Input{Container: healthy, Image: &Image{Ref: "gpustack/gpustack:v0.5.1-cpu", Version: "v0.5.1"},
			Database: sqlite(t, "e6bf9e067296", nil), Backups: []backup.Manifest{goodBackup}}, "v0.5.1", "cpu"),
	}
}

func TestTextGolden(t *testing.T) {
	for name, in := range goldenInputs(t) {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			Text(&buf, Diagnose(in, catalog.Default()))
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./doctor/ -update to create it)", err)
			}
			if got := buf.String(); got != string(want) {
				t.Errorf("rendered text differs from %s (go test ./doctor/ -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}

func TestDiagnoseIsDeterministic(t *testing.T) {
	for name, in := range goldenInputs(t) {
		var first bytes.Buffer
		Text(&first, Diagnose(in, catalog.Default()))
		for i := 0; i < 20; i++ {
			var again bytes.Buffer
			Text(&again, Diagnose(in, catalog.Default()))
			if again.String() != first.String() {
				t.Fatalf("%s: run %d rendered differently", name, i)
			}
		}
	}
}

func TestJSON(t *testing.T) {
	in := goldenInputs(t)["seed_container"]
	var buf bytes.Buffer
	if err := JSON(&buf, Diagnose(in, catalog.Default())); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not a JSON array of reports: %v\n%s", err, buf.String())
	}
	if len(got) != 1 || got[0]["healthy"] != false || got[0]["container"] != "gpustack-hand" {
		t.Fatalf("unexpected report: %s", buf.String())
	}
	findings := got[0]["findings"].([]any)
	first := findings[0].(map[string]any)
	if first["code"] != CodeProbeMismatch || first["severity"] != string(Critical) || first["evidence"] == "" {
		t.Errorf("first finding = %v", first)
	}
	options := got[0]["options"].([]any)
	if o := options[0].(map[string]any); o["rank"] != 1.0 || o["kind"] != KindRestore || len(o["commands"].([]any)) == 0 {
		t.Errorf("first option = %v", o)
	}
	buf.Reset()
	if err := JSON(&buf); err != nil || buf.String() != "[]\n" {
		t.Errorf("no reports = %q, %v; want an empty array", buf.String(), err)
	}
}
