package executor

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/planner"
	"github.com/gpustack-deploy/gpustack-deploy/schema"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

const (
	oldHead = "004c73a5c09e" // head of v0.4.1
	newHead = "e6bf9e067296" // head of v0.5.1
	oldRef  = "gpustack/gpustack:v0.4.1-cpu"
	newRef  = "gpustack/gpustack:v0.5.1-cpu"
)

// now is the executor's fixed clock: backup ids and log names depend on it.
var now = time.Date(2026, 11, 28, 6, 17, 2, 0, time.UTC)

func TestMatchSignature(t *testing.T) {
	tests := []struct {
		line string
		want string // "" when the line is harmless
	}{
		{"2026-11-28 06:17:02,123 - gpustack.server - ERROR - Database migration failed: (sqlite3.OperationalError)", "Database migration failed"},
		{"Error running server: [Errno 98] address already in use", "Error running server"},
		{"alembic.util.exc.CommandError: Can't locate revision identified by 'a7c1b20f9d3e'", "Can't locate revision"},
		{"sqlite3.OperationalError: no such column: models.categories", "no such column"},
		{"sqlite3.OperationalError: duplicate column name: resolved_path", "duplicate column name"},
		{"Failed to migrate the database", "Failed to migrate"},
		{"gpustack: error: unrecognized arguments: --cache-dir /cache", "unrecognized arguments"},
		{"2026-11-28 06:17:02,123 - gpustack.server - CRITICAL - cannot bind", "CRITICAL"},
		{"2026-11-28 06:17:02,123 - gpustack.server - INFO - Serving on 0.0.0.0:80.", ""},
		{"2026-11-28 06:17:02,123 - gpustack.worker - WARNING - CRITICAL is only a word here", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, bad := MatchSignature(tt.line)
		if got != tt.want || bad != (tt.want != "") {
			t.Errorf("MatchSignature(%q) = %q, %v; want %q, %v", tt.line, got, bad, tt.want, tt.want != "")
		}
	}
}

// buildDB writes a SQLite database stamped rev with exactly the tables and
// columns of rev's schema probe, and rows rows in the first of them.
func buildDB(t *testing.T, path, rev string, rows int) {
	t.Helper()
	r, ok := catalog.Default().Revision(rev)
	if !ok {
		t.Fatalf("revision %s not in the catalog", rev)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		`CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)`,
		`INSERT INTO alembic_version VALUES ('` + rev + `')`,
	}
	tables := make([]string, 0, len(r.Probe().Tables))
	for name := range r.Probe().Tables {
		tables = append(tables, name)
	}
	sort.Strings(tables)
	for _, name := range tables {
		var cols []string
		for _, c := range r.Probe().Tables[name] {
			cols = append(cols, `"`+c+`"`)
		}
		stmts = append(stmts, `CREATE TABLE "`+name+`" (`+strings.Join(cols, ", ")+`)`)
	}
	for i := 0; i < rows; i++ {
		stmts = append(stmts, `INSERT INTO "`+tables[0]+`" DEFAULT VALUES`)
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func revisionOf(t *testing.T, path string) string {
	t.Helper()
	s, err := schema.Inspect(path, schema.Options{Integrity: true})
	if err != nil {
		t.Fatalf("inspect %s: %v", path, err)
	}
	return s.Revision
}

// deployment is the desired deployment of the tests, answering on f's port.
func deployment(f *fakeEngine, version string, backupDir string) config.Deployment {
	return config.Deployment{
		Name: "prod", Host: config.DefaultHost, Version: version, Variant: "cpu",
		Image: "gpustack/gpustack", ContainerName: "gpustack-prod",
		Port: f.port(), ContainerPort: 80, ListenAddress: "127.0.0.1",
		Data:    config.Volume{Name: "gpustack-prod-data", Path: spec.DataDir},
		Policy:  config.Policy{Pull: config.PullMissing},
		Backup:  config.BackupPolicy{Dir: backupDir, BeforeUpgrade: true, Keep: 5},
		Health:  config.Health{Timeout: 20 * time.Second, Address: "127.0.0.1"},
		Restart: "unless-stopped",
	}
}

// upgrade is a deployment running v0.4.1 on a database at its head, about
// to move to v0.5.1: the executor, the fake engine, the desired deployment
// and the plan.
type upgrade struct {
	f    *fakeEngine
	x    *Executor
	out  *bytes.Buffer
	d    config.Deployment
	p    *plan.Plan
	data string // local directory behind the data volume
	old  string // the running v0.4.1 container
}

func newUpgrade(t *testing.T, configure func(d *config.Deployment)) *upgrade {
	t.Helper()
	f := newFakeEngine(t)
	backups := filepath.Join(t.TempDir(), "backups")
	old := deployment(f, "v0.4.1", backups)
	d := deployment(f, "v0.5.1", backups)
	if configure != nil {
		configure(&d)
	}
	u := &upgrade{f: f, d: d, out: &bytes.Buffer{}}
	u.data = f.addVolume(d.Data.Name)
	buildDB(t, filepath.Join(u.data, "database.db"), oldHead, 3)
	for _, name := range backup.SecretFiles {
		if err := os.WriteFile(filepath.Join(u.data, name), []byte(name+"-value"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	oldSpec := spec.For(old, oldHead)
	u.old = f.addContainer(oldSpec, "running")
	f.behaviors[oldRef] = behavior{healthy: true, version: "v0.4.1"}
	u.p = planFor(t, d, observed(t, f, d, oldSpec, u.old, oldHead))
	u.x = &Executor{
		Engines:      map[string]Engine{config.DefaultHost: f},
		Catalog:      catalog.Default(),
		StateDir:     t.TempDir(),
		Out:          u.out,
		Now:          func() time.Time { return now },
		StopGrace:    time.Second,
		PollInterval: 20 * time.Millisecond,
	}
	return u
}

// observed is what observe would report for the container id built from s,
// with the target image present and the database at rev.
func observed(t *testing.T, f *fakeEngine, d config.Deployment, s spec.Container, id, rev string) *observe.Deployment {
	t.Helper()
	ct := &observe.Container{
		ID: id, Name: s.Name, Image: s.Image, ImageID: "sha256:" + s.Image, State: "running",
		Labels: s.Labels, Managed: true, Args: s.ArgStrings(), Env: s.EnvStrings(), Restart: s.Restart, Health: "ok",
		Ports: []observe.Port{{HostIP: s.Port.HostIP, HostPort: s.Port.HostPort, ContainerPort: s.Port.ContainerPort}},
	}
	for _, m := range s.Mounts {
		ct.Mounts = append(ct.Mounts, observe.Mount{Source: m.Source(), Destination: m.Target})
	}
	r, _ := catalog.Default().Revision(rev)
	tables := map[string][]string{"alembic_version": {"version_num"}}
	for name, cols := range r.Probe().Tables {
		tables[name] = cols
	}
	return &observe.Deployment{
		Name: d.Name, Host: d.Host, Container: ct,
		Image:    &observe.Image{Ref: d.ImageRef(), ID: "sha256:" + d.ImageRef()},
		Data:     &observe.Volume{Source: d.Data.Name, Managed: true},
		Database: observe.Database{Status: observe.DBRead, Engine: catalog.EngineSQLite, Revision: rev, Tables: tables},
	}
}

func planFor(t *testing.T, d config.Deployment, od *observe.Deployment) *plan.Plan {
	t.Helper()
	p, err := planner.Plan(&config.Desired{Deployments: []config.Deployment{d}},
		&observe.Observed{Deployments: map[string]*observe.Deployment{d.Name: od}}, catalog.Default())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

func (u *upgrade) apply(t *testing.T) ([]Result, error) {
	t.Helper()
	return u.x.Apply(context.Background(), u.p, &config.Desired{Deployments: []config.Deployment{u.d}})
}

// migrates is the new release's start: it migrates the database to newHead.
func migrates(t *testing.T) func(string) {
	return func(data string) { buildDB(t, filepath.Join(data, "database.db"), newHead, 3) }
}

func kinds(p *plan.Plan) []plan.ActionKind {
	var out []plan.ActionKind
	for _, a := range p.Deployments[0].Actions {
		out = append(out, a.Kind)
	}
	return out
}

func TestApplyUpgrade(t *testing.T) {
	u := newUpgrade(t, nil)
	want := []plan.ActionKind{plan.ActionBackupDatabase, plan.ActionReplaceContainer, plan.ActionMigrate, plan.ActionVerify, plan.ActionRemovePrevious}
	if got := kinds(u.p); !reflect.DeepEqual(got, want) {
		t.Fatalf("the plan is %v, want %v\n%s", got, want, u.p)
	}
	u.f.behaviors[newRef] = behavior{healthy: true, version: "v0.5.1", onStart: migrates(t)}
	results, err := u.apply(t)
	if err != nil {
		t.Fatalf("Apply: %v\n%s", err, u.out)
	}
	if len(results) != 1 || !results[0].Verified || results[0].Failure != nil || results[0].RolledBack {
		t.Fatalf("results = %+v, want one verified result", results)
	}
	wantCalls := []string{
		"StopContainer c1", // for a consistent backup
		"StopContainer c1",
		"RenameContainer c1 gpustack-prod-gsd-previous",
		"CreateContainer gpustack-prod " + newRef + " restart=no",
		"StartContainer c2",
		"SetRestartPolicy c2 unless-stopped",
		"RemoveContainer c1",
	}
	if got := u.f.Calls(); !reflect.DeepEqual(got, wantCalls) {
		t.Errorf("calls\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantCalls, "\n"))
	}
	wantID := backup.NewID(now, oldHead)
	if results[0].Backup != wantID {
		t.Errorf("backup %q, want %q", results[0].Backup, wantID)
	}
	store, err := backup.Open(u.d.Backup.Dir, u.d.Name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := store.Get(wantID)
	if err != nil {
		t.Fatalf("the backup is not in the store: %v", err)
	}
	if !m.Verified || m.Revision != oldHead || m.Version != "v0.4.1-cpu" || m.ImageID != "sha256:"+oldRef {
		t.Errorf("manifest = %+v", m)
	}
	if err := store.Verify(m); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if rev := revisionOf(t, filepath.Join(u.data, "database.db")); rev != newHead {
		t.Errorf("the volume's database is at %s, want %s", rev, newHead)
	}
}

// TestCleanupFailureKeepsTheVerifiedContainer: once the new container is
// verified, a failing clean-up step (here removing the kept container) is
// reported but must not stop or roll back the new version.
func TestCleanupFailureKeepsTheVerifiedContainer(t *testing.T) {
	u := newUpgrade(t, nil)
	u.f.behaviors[newRef] = behavior{healthy: true, version: "v0.5.1", onStart: migrates(t)}
	u.f.removeErr = map[string]error{"c1": errors.New("engine busy")}
	results, err := u.apply(t)
	if err == nil {
		t.Fatal("the failed clean-up must be reported")
	}
	if len(results) != 1 || !results[0].Verified || results[0].RolledBack || results[0].Failure == nil || results[0].Failure.Kind != FailCleanup {
		t.Fatalf("results = %+v, want verified, not rolled back, a clean-up failure", results)
	}
	for _, call := range u.f.Calls() {
		if call == "StopContainer c2" || strings.HasPrefix(call, "CopyIn") {
			t.Errorf("the verified container was touched after a clean-up failure: %v", u.f.Calls())
		}
	}
	if ct, _ := u.f.InspectContainer(context.Background(), "gpustack-prod"); ct == nil || ct.ID != "c2" || !ct.Running() {
		t.Errorf("the new container should still run: %+v", ct)
	}
}

// rollbackCalls is the sequence of a failed replace that goes back: the
// backup and replace, then stop the new container, save its log, restore
// the backup into the volume through it, remove it, and bring the previous
// container back under its name.
var rollbackCalls = []string{
	"StopContainer c1",
	"StopContainer c1",
	"RenameContainer c1 gpustack-prod-gsd-previous",
	"CreateContainer gpustack-prod " + newRef + " restart=no",
	"StartContainer c2",
	"StopContainer c2",
	"Logs c2",
	"CopyIn c2 /var/lib/gpustack",
	"RemoveContainer c2",
	"RenameContainer c1 gpustack-prod",
	"StartContainer c1",
}

func TestApplyMigrationFailureRollsBack(t *testing.T) {
	u := newUpgrade(t, nil)
	failed := "2026-11-28 06:17:05,001 - gpustack.server - ERROR - Database migration failed: (sqlite3.OperationalError) no such table: model_usages"
	u.f.behaviors[newRef] = behavior{
		logs: []string{"2026-11-28 06:17:04,000 - gpustack.server - INFO - Starting GPUStack v0.5.1", failed},
		// The migration got halfway: the stamp moved, the data did not.
		onStart: func(data string) { buildDB(t, filepath.Join(data, "database.db"), newHead, 0) },
	}
	start := time.Now()
	results, err := u.apply(t)
	if took := time.Since(start); took > u.d.Health.Timeout/2 {
		t.Errorf("the apply took %s: the log line should fail it fast", took)
	}
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("Apply error = %v, want a *Failure", err)
	}
	if f.Kind != FailMigration || f.LogLine != failed {
		t.Errorf("failure = %v %q, want %v with the log line", f.Kind, f.LogLine, FailMigration)
	}
	if len(results) != 1 {
		t.Fatalf("results = %+v", results)
	}
	res := results[0]
	if !res.RolledBack || res.Verified || res.Failure != f || res.Backup == "" {
		t.Errorf("result = %+v, want rolled back with the failure and the backup", res)
	}
	if got := u.f.Calls(); !reflect.DeepEqual(got, rollbackCalls) {
		t.Errorf("calls\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(rollbackCalls, "\n"))
	}
	// The backup goes in whole, with companions that neutralise the failed
	// version's -wal, -shm and -journal.
	wantIn := [][]string{{"database.db", "token", "jwt_secret_key", "database.db-wal", "database.db-shm", "database.db-journal"}}
	if !reflect.DeepEqual(u.f.copiedIn, wantIn) {
		t.Errorf("CopyIn wrote %v, want %v", u.f.copiedIn, wantIn)
	}
	if rev := revisionOf(t, filepath.Join(u.data, "database.db")); rev != oldHead {
		t.Errorf("after the rollback the volume's database is at %s, want %s", rev, oldHead)
	}
	// The full log of the failed container is kept beside the backups.
	if f.LogFile == "" || filepath.Dir(f.LogFile) != filepath.Join(u.d.Backup.Dir, u.d.Name) {
		t.Errorf("log saved at %q, want under %s", f.LogFile, filepath.Join(u.d.Backup.Dir, u.d.Name))
	} else if b, err := os.ReadFile(f.LogFile); err != nil || !strings.Contains(string(b), failed) {
		t.Errorf("saved log holds %q (%v), want the failing line", b, err)
	}
	prev, _ := u.f.InspectContainer(context.Background(), "gpustack-prod")
	if prev == nil || prev.ID != u.old || !prev.Running() {
		t.Errorf("gpustack-prod is %+v, want the previous container running", prev)
	}
}

// TestRollbackIgnoresThePreviousContainersOldLog brings back a container
// whose log, from months of service, holds a line that looks like a
// failure: only what it writes after this start may count.
func TestRollbackIgnoresThePreviousContainersOldLog(t *testing.T) {
	u := newUpgrade(t, nil)
	u.f.mu.Lock()
	u.f.containers[u.old].logs = []logLine{{
		at:   now.Add(-90 * 24 * time.Hour),
		text: "2026-08-30 02:00:00,000 - gpustack.server - CRITICAL - worker gpu-1 lost",
	}}
	u.f.mu.Unlock()
	u.f.behaviors[newRef] = behavior{logs: []string{"Database migration failed"}}
	results, err := u.apply(t)
	if err == nil {
		t.Fatal("Apply succeeded")
	}
	if len(results) != 1 || !results[0].RolledBack {
		t.Fatalf("result = %+v; error:\n%v", results, err)
	}
}

func TestApplyVerifyFailures(t *testing.T) {
	exit1 := int64(1)
	tests := []struct {
		name    string
		run     behavior
		timeout time.Duration
		kind    FailureKind
		message string
	}{
		{
			name:    "exit before health",
			run:     behavior{logs: []string{"INFO - Starting GPUStack"}, exit: &exit1, exitAfter: 100 * time.Millisecond},
			kind:    FailExited,
			message: "exited with code 1 before /healthz answered",
		},
		{
			name:    "health never OK",
			run:     behavior{logs: []string{"INFO - Starting GPUStack"}},
			timeout: 700 * time.Millisecond,
			kind:    FailHealthTimeout,
			message: "/healthz within 700ms",
		},
		{
			name:    "version mismatch",
			run:     behavior{healthy: true, version: "v0.4.1"},
			kind:    FailVersionMismatch,
			message: `/version reports "v0.4.1", want "v0.5.1"`,
		},
		{
			name:    "stamp is not the head",
			run:     behavior{healthy: true, version: "v0.5.1"},
			kind:    FailRevision,
			message: `stamped "004c73a5c09e", want the release head "e6bf9e067296"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpgrade(t, func(d *config.Deployment) {
				if tt.timeout > 0 {
					d.Health.Timeout = tt.timeout
				}
			})
			u.f.behaviors[newRef] = tt.run
			results, err := u.apply(t)
			var f *Failure
			if !errors.As(err, &f) {
				t.Fatalf("Apply error = %v, want a *Failure", err)
			}
			if f.Kind != tt.kind || !strings.Contains(f.Message, tt.message) {
				t.Errorf("failure = %v: %s\nwant %v: …%s…", f.Kind, f.Message, tt.kind, tt.message)
			}
			if len(results) != 1 || !results[0].RolledBack {
				t.Fatalf("result = %+v, want rolled back", results)
			}
			if got := u.f.Calls(); !reflect.DeepEqual(got, rollbackCalls) {
				t.Errorf("calls\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(rollbackCalls, "\n"))
			}
		})
	}
}

// TestFailureWithoutBackupKeepsTheFailedContainer: with no backup the
// database may hold half a migration, so neither the old version is started
// on it nor is the apply reported as rolled back.
func TestFailureWithoutBackupKeepsTheFailedContainer(t *testing.T) {
	u := newUpgrade(t, func(d *config.Deployment) { d.Backup.BeforeUpgrade = false })
	if _, ok := u.p.Deployments[0].Action(plan.ActionBackupDatabase); ok {
		t.Fatalf("the plan backs up although backup.before_upgrade = false:\n%s", u.p)
	}
	u.f.behaviors[newRef] = behavior{logs: []string{"Database migration failed"}, onStart: migrates(t)}
	results, err := u.apply(t)
	if err == nil {
		t.Fatal("Apply succeeded")
	}
	if len(results) != 1 {
		t.Fatalf("results = %+v", results)
	}
	res := results[0]
	if res.RolledBack {
		t.Errorf("reported as rolled back, but the previous container was not started: %+v", res)
	}
	if res.Failure == nil || res.Failure.Kind != FailMigration {
		t.Errorf("failure = %+v, want %v", res.Failure, FailMigration)
	}
	want := []string{
		"StopContainer c1",
		"RenameContainer c1 gpustack-prod-gsd-previous",
		"CreateContainer gpustack-prod " + newRef + " restart=no",
		"StartContainer c2",
		"StopContainer c2",
		"Logs c2",
	}
	if got := u.f.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(res.Notes) == 0 || !strings.Contains(res.Notes[len(res.Notes)-1], "the previous one is not started") {
		t.Errorf("notes = %q, want one saying the previous container is not started", res.Notes)
	}
}

func TestApplyRefusedPlanTouchesNothing(t *testing.T) {
	u := newUpgrade(t, nil)
	u.d.Version = "main"
	od := observed(t, u.f, u.d, spec.For(deployment(u.f, "v0.4.1", u.d.Backup.Dir), oldHead), u.old, oldHead)
	p := planFor(t, u.d, od)
	if !p.Refused() {
		t.Fatalf("a dev tag should be refused:\n%s", p)
	}
	results, err := u.x.Apply(context.Background(), p, &config.Desired{Deployments: []config.Deployment{u.d}})
	if !errors.Is(err, ErrRefused) || results != nil {
		t.Fatalf("Apply = %v, %v; want nil, ErrRefused", results, err)
	}
	if calls := u.f.Calls(); len(calls) != 0 {
		t.Errorf("a refused plan called the engine: %v", calls)
	}
	if entries, _ := os.ReadDir(u.x.StateDir); len(entries) != 0 {
		t.Errorf("a refused plan left state behind: %v", entries)
	}
}

func where(i *Interrupted) string {
	if i == nil {
		return ""
	}
	return i.Where
}
