package render

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/executor"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/planner"
	"github.com/gpustack-deploy/gpustack-deploy/planner/plantest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func planOne(t *testing.T, d config.Deployment, od *observe.Deployment) *plan.Plan {
	t.Helper()
	p, err := planner.Plan(&config.Desired{Deployments: []config.Deployment{d}},
		&observe.Observed{Deployments: map[string]*observe.Deployment{d.Name: od}}, catalog.Default())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

// planCases are the plans rendered to golden files, by file name.
func planCases(t *testing.T) map[string]*plan.Plan {
	t.Helper()
	cases := map[string]*plan.Plan{}

	d := plantest.Deployment("v0.5.1", "cpu")
	cases["fresh_install"] = planOne(t, d, plantest.Absent(d))

	cases["no_op"] = planOne(t, d, plantest.Running(t, d, "e6bf9e067296"))

	// v0.4.1 to v0.6.0 crosses c45e397531d1, which deletes data and moves
	// the model cache: two warnings.
	od := plantest.Running(t, plantest.Deployment("v0.4.1", "cpu"), "004c73a5c09e")
	od.Image = nil
	cases["upgrade"] = planOne(t, plantest.Deployment("v0.6.0", "cpu"), od)

	cases["refused_dev_tag"] = planOne(t, plantest.Deployment("main", "cpu"), plantest.Running(t, plantest.Deployment("v0.5.1", "cpu"), "e6bf9e067296"))

	// The file says v0.6.0; the backup was taken at v0.5.1.
	od = plantest.Running(t, plantest.Deployment("v0.6.0", "cpu"), "c45e397531d1")
	pd := planner.PlanRestore(plantest.Deployment("v0.6.0", "cpu"), od, planner.RestoreSource{
		ID: "20261128T061702.000Z-e6bf9e067296", Version: "v0.5.1-cpu", Revision: "e6bf9e067296",
	}, catalog.Default())
	cases["restore"] = &plan.Plan{FormatVersion: plan.FormatVersion, Deployments: []plan.Deployment{pd}, Observed: "sha256:restore"}

	// The v0.x → v2 jump: whole-volume backup, migrate data, recreate.
	od = plantest.Running(t, plantest.Deployment("v0.7.1", "cpu"), "d19176de3b74")
	od.Database.Rows = plantest.JumpRows()
	v2 := plantest.V2Deployment("v2.2.3")
	v2.Args = nil
	cases["jump"] = planOne(t, v2, od)

	// A v2 upgrade on the embedded PostgreSQL.
	od = plantest.Running(t, plantest.V2Deployment("v2.1.2"), "8ad0f94c92e8")
	od.Database = plantest.PostgresDatabase(t, "8ad0f94c92e8")
	od.Image = nil
	cases["v2_upgrade"] = planOne(t, plantest.V2Deployment("v2.2.3"), od)

	// #5774: the probe refusal with the repair.
	od = plantest.Running(t, plantest.V2Deployment("v2.2.1"), "b2c3d4e5f6a7")
	od.Database = plantest.PostgresDatabase(t, "b2c3d4e5f6a7")
	for _, table := range []string{"model_usage_details", "model_usage_details_archive"} {
		cols := od.Database.Tables[table]
		od.Database.Tables[table] = cols[:0]
		for _, c := range cols {
			if c != "completed" {
				od.Database.Tables[table] = append(od.Database.Tables[table], c)
			}
		}
	}
	cases["refused_completed_column"] = planOne(t, plantest.V2Deployment("v2.2.3"), od)

	// An earlier jump that never finished.
	od = plantest.Running(t, plantest.V2Deployment("v2.2.3"), "c4d7e8f9a0b1")
	od.Container.Env = append(od.Container.Env, "GPUSTACK_DATA_MIGRATION=true")
	od.Database = observe.Database{Status: observe.DBUnsupported, Engine: catalog.EngineEmbeddedPostgres, Reason: "not inspected"}
	cases["refused_failed_jump"] = planOne(t, plantest.V2Deployment("v2.2.3"), od)

	// External databases: a dump first, or none and a loud warning (MySQL).
	ext := func(version, scheme string) config.Deployment {
		d := plantest.V2Deployment(version)
		d.DatabaseURL = config.Value{S: scheme + "://gpustack:" + "pw@db.example/gpustack", Sensitive: true}
		d.DatabaseScheme, d.Backup.Method, d.Backup.ToolImage = scheme, "", "postgres:17"
		return d
	}
	od = plantest.Running(t, ext("v2.1.2", config.SchemePostgreSQL), "8ad0f94c92e8")
	od.Database = observe.Database{Status: observe.DBAbsent}
	cases["external"] = planOne(t, ext("v2.2.3", config.SchemePostgreSQL), od)
	od = plantest.Running(t, ext("v2.1.2", config.SchemeMySQL), "8ad0f94c92e8")
	od.Database = observe.Database{Status: observe.DBAbsent}
	acknowledged := ext("v2.2.3", config.SchemeMySQL)
	acknowledged.Backup.ExternalAcknowledged, acknowledged.Backup.ToolImage = true, ""
	cases["external_acknowledged"] = planOne(t, acknowledged, od)

	// Two hosts: each host's deployments under its heading.
	a := plantest.Deployment("v0.5.1", "cpu")
	a.Name, a.ContainerName = "alpha", "gpustack-alpha"
	b := plantest.Deployment("v0.5.1", "cpu")
	b.Name, b.Host, b.ContainerName = "beta", "gpu1", "gpustack-beta"
	c := plantest.Deployment("v0.5.1", "cpu")
	c.Name, c.Host, c.ContainerName = "gamma", "gpu1", "gpustack-gamma"
	p, err := planner.Plan(&config.Desired{Deployments: []config.Deployment{a, b, c}},
		&observe.Observed{Deployments: map[string]*observe.Deployment{
			a.Name: plantest.Running(t, a, "e6bf9e067296"), b.Name: plantest.Absent(b), c.Name: plantest.Running(t, c, "e6bf9e067296"),
		}}, catalog.Default())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	cases["two_hosts"] = p
	cases["cluster"] = clusterPlan()
	return cases
}

// clusterPlan is the upgrade of a server on gpu0 and three workers on gpu1
// and gpu2, two at a time, as the planner makes it.
func clusterPlan() *plan.Plan {
	server := plan.Deployment{Name: "prod", Host: "gpu0",
		Current: plan.State{Version: "v2.1.2", Release: "v2.1.2", Container: "gpustack-prod (running)", Health: "ok", Revision: "8ad0f94c92e8", Engine: catalog.EngineEmbeddedPostgres},
		Target:  plan.State{Version: "v2.2.3", Release: "v2.2.3", Revision: "c4d7e8f9a0b1", Engine: catalog.EngineEmbeddedPostgres},
		Tag:     catalog.ClassifyTag("v2.2.3"),
		Actions: []plan.Action{
			{Kind: plan.ActionBackupDatabase, Reason: plan.ReasonRevisionBehind, Subject: "gpustack-data", From: "8ad0f94c92e8", Detail: "/backups", Method: plan.MethodPGFiles},
			{Kind: plan.ActionReplaceContainer, Reason: plan.ReasonVersionChanged, Subject: "gpustack-prod", From: "v2.1.2", To: "v2.2.3"},
			{Kind: plan.ActionVerify, Reason: plan.ReasonContainerChanges, Subject: "gpustack-prod", To: "c4d7e8f9a0b1"},
			{Kind: plan.ActionRemovePrevious, Reason: plan.ReasonKeptForRollback, Subject: "gpustack-prod-gsd-previous"},
		}}
	p := &plan.Plan{FormatVersion: plan.FormatVersion, Deployments: []plan.Deployment{server}}
	for i, h := range []string{"gpu1", "gpu1", "gpu2"} {
		name := fmt.Sprintf("w%d", i+1)
		p.Deployments = append(p.Deployments, plan.Deployment{Name: name, Host: h, Role: plan.RoleWorker, Server: "prod", Wave: i/2 + 1, Maintenance: true,
			Current: plan.State{Version: "v2.1.2", Release: "v2.1.2", Container: "gpustack-" + name + " (running)", Health: "ok"},
			Target:  plan.State{Version: "v2.2.3", Release: "v2.2.3"},
			Tag:     catalog.ClassifyTag("v2.2.3"),
			Actions: []plan.Action{
				{Kind: plan.ActionReplaceContainer, Reason: plan.ReasonVersionChanged, Subject: "gpustack-" + name, From: "v2.1.2", To: "v2.2.3"},
				{Kind: plan.ActionVerify, Reason: plan.ReasonContainerChanges, Subject: "gpustack-" + name, Detail: "the worker answers /healthz and its server lists it READY"},
				{Kind: plan.ActionRemovePrevious, Reason: plan.ReasonKeptForRollback, Subject: "gpustack-" + name + "-gsd-previous"},
			}})
	}
	return p
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./render -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s; run go test ./render -update and review the diff\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestPlanGolden(t *testing.T) {
	for name, p := range planCases(t) {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			Plan(&buf, p)
			golden(t, name+".golden", buf.Bytes())
		})
	}
}

// TestPlanIsStable renders each plan many times: maps inside a plan must
// not leak their order into the text.
func TestPlanIsStable(t *testing.T) {
	for name, p := range planCases(t) {
		var first bytes.Buffer
		Plan(&first, p)
		for i := 0; i < 10; i++ {
			var again bytes.Buffer
			Plan(&again, planCases(t)[name])
			if again.String() != first.String() {
				t.Fatalf("%s: render %d differs:\n%s\nvs\n%s", name, i, again.String(), first.String())
			}
		}
	}
}

func TestResultsGolden(t *testing.T) {
	took := 83*time.Second + 456789*time.Microsecond
	tests := map[string][]executor.Result{
		"results_success": {{
			Deployment: "prod", Backup: "20261128T061702.000Z-004c73a5c09e", Verified: true,
			Notes: []string{"removed backup 20261001T000000.000Z-004c73a5c09e (backup.keep = 5)"},
		}},
		"results_rolled_back": {{
			Deployment: "prod", Backup: "20261128T061702.000Z-004c73a5c09e", RolledBack: true,
			Failure: &executor.Failure{
				Kind:    executor.FailMigration,
				Message: `GPUStack logged "Database migration failed"`,
				LogLine: "2026-11-28 06:18:40,201 - gpustack.server - ERROR - Database migration failed: no such table: model_usages",
				LogTail: []string{"INFO - Starting GPUStack v0.5.1", "ERROR - Database migration failed: no such table: model_usages"},
				LogFile: "/backups/prod/failed-20261128T061702Z-v0.5.1-cpu.log",
			},
		}},
		"results_failed": {
			{Deployment: "staging", Verified: true},
			{
				Deployment: "prod",
				Failure: &executor.Failure{
					Kind:    executor.FailHealthTimeout,
					Message: "no healthy answer from http://127.0.0.1:8080/healthz within 10m0s",
					LogTail: []string{"INFO - Starting GPUStack v0.5.1", "INFO - Loading models"},
					LogFile: "/backups/prod/failed-20261128T061702Z-v0.5.1-cpu.log",
				},
				Notes: []string{"no backup was taken by this apply (backup.before_upgrade = false): the failed container is kept stopped for inspection and the previous one is not started"},
			},
		},
	}
	for name, results := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			Results(&buf, results, took)
			golden(t, name+".golden", buf.Bytes())
		})
	}
	t.Run("no results", func(t *testing.T) {
		var buf bytes.Buffer
		Results(&buf, nil, took)
		if buf.Len() != 0 {
			t.Errorf("Results without results wrote %q", buf.String())
		}
	})
}

func TestJSON(t *testing.T) {
	for name, p := range planCases(t) {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := JSON(&buf, p); err != nil {
				t.Fatalf("JSON: %v", err)
			}
			var fields map[string]any
			if err := json.Unmarshal(buf.Bytes(), &fields); err != nil {
				t.Fatalf("the output is not JSON: %v\n%s", err, buf.String())
			}
			if fields["changes"] != p.HasChanges() || fields["refused"] != p.Refused() {
				t.Errorf("changes = %v, refused = %v; want %v, %v", fields["changes"], fields["refused"], p.HasChanges(), p.Refused())
			}
			for _, key := range []string{"format_version", "deployments", "observed"} {
				if _, ok := fields[key]; !ok {
					t.Errorf("the JSON lacks %q", key)
				}
			}
			var back plan.Plan
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
				t.Fatalf("decode the plan: %v", err)
			}
			if !reflect.DeepEqual(&back, p) {
				t.Errorf("the plan does not survive a round trip through JSON\n got %+v\nwant %+v", back, *p)
			}
		})
	}
}

// TestDatabaseURLNeverRendered: the plan of an external database shows
// its scheme, never its URL, in text or JSON.
func TestDatabaseURLNeverRendered(t *testing.T) {
	cases := planCases(t)
	for _, name := range []string{"external", "external_acknowledged"} {
		var text, js bytes.Buffer
		Plan(&text, cases[name])
		if err := JSON(&js, cases[name]); err != nil {
			t.Fatal(err)
		}
		for _, out := range []string{text.String(), js.String()} {
			if bytes.Contains([]byte(out), []byte("db.example")) || bytes.Contains([]byte(out), []byte("pw@")) {
				t.Errorf("%s: the URL is rendered:\n%s", name, out)
			}
		}
		if !bytes.Contains(text.Bytes(), []byte("no embedded database is started")) {
			t.Errorf("%s: the plan must say no embedded database is started:\n%s", name, text.String())
		}
	}
}
