package emulator

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// v2Run starts release rel on dir with the host-PostgreSQL env plus extra.
func v2Run(t *testing.T, rel, dir string, env map[string]string, extra map[string]string) *run {
	t.Helper()
	all := map[string]string{}
	for k, v := range env {
		all[k] = v
	}
	for k, v := range extra {
		all[k] = v
	}
	return startRun(t, rel, dir, all)
}

// serving fails unless the run listens.
func serving(t *testing.T, r *run, rel string) {
	t.Helper()
	if r.port == "" {
		t.Fatalf("%s: start failed (exit %d); log:\n%s%s", rel, r.code, r.stdout, r.stderr)
	}
}

func sqlRows(t *testing.T, dir, stmt string) []map[string]any {
	t.Helper()
	var out []map[string]any
	emulatorCmd(t, dir, &out, "sql", stmt)
	return out
}

func pgStamped(t *testing.T, dir string) string {
	t.Helper()
	out := sqlRows(t, dir, "SELECT version_num FROM alembic_version")
	if len(out) != 1 {
		t.Fatalf("alembic_version: %v", out)
	}
	return out[0]["version_num"].(string)
}

// clusterState reads pg_control's "Database cluster state".
func clusterState(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(hostPGBin, "pg_controldata"), filepath.Join(dir, PostgresDataDir)).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_controldata: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == "Database cluster state" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("pg_controldata: no state:\n%s", out)
	return ""
}

func TestV2FreshUpgradeDowngrade(t *testing.T) {
	t.Parallel()
	dir, env := pgTestDir(t)
	r := v2Run(t, "v2.1.2", dir, env, nil)
	serving(t, r, "v2.1.2")
	if rev := pgStamped(t, dir); rev != "8ad0f94c92e8" {
		t.Errorf("stamp %s", rev)
	}
	var counts map[string]int
	emulatorCmd(t, dir, &counts, "seed", "--models", "2", "--instances", "3", "--users", "1")
	if counts["models"] != 2 || counts["model_instances"] != 3 || counts["users"] != 2 || counts["clusters"] != 1 {
		t.Errorf("after seed: %v", counts)
	}
	if code := r.stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.stdout)
	}
	log := r.stdout.String()
	for _, want := range []string{
		"gpustack.cmd.start - INFO - GPUStack version: v2.1.2 (e3b0c44)",
		"gpustack.server.server - INFO - Running database migration.",
		"gpustack.server.server - INFO - Database migration completed.",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if st := clusterState(t, dir); st != "shut down" {
		t.Errorf("cluster state %q", st)
	}
	if b, err := os.ReadFile(filepath.Join(dir, BootstrapVersion)); err != nil || strings.TrimSpace(string(b)) != "v2.1.2" {
		t.Errorf("bootstrap_version: %q %v", b, err)
	}
	fi, err := os.Stat(filepath.Join(dir, PostgresDataDir))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("PGDATA: %v %v", fi.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, PostgresPassFile)); err != nil || len(b) != 16 {
		t.Errorf("postgres_root_pass: %q %v", b, err)
	}

	r = v2Run(t, "v2.2.3", dir, env, nil)
	serving(t, r, "v2.2.3")
	if rev := pgStamped(t, dir); rev != "c4d7e8f9a0b1" {
		t.Errorf("stamp after upgrade %s", rev)
	}
	emulatorCmd(t, dir, &counts, "rows")
	if counts["models"] != 2 || counts["model_instances"] != 3 || counts["principals"] < 2 {
		t.Errorf("after upgrade: %v", counts)
	}
	r.stop()

	// v2.1.2 cannot read a v2.2.3 database: traceback, exit 1 (v2.1.1+).
	r = v2Run(t, "v2.1.2", dir, env, nil)
	if r.port != "" || r.code != 1 {
		t.Fatalf("downgrade: port %q exit %d", r.port, r.code)
	}
	for _, want := range []string{"Traceback (most recent call last):", "RuntimeError: Database migration failed: Can't locate revision identified by 'c4d7e8f9a0b1'"} {
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("downgrade log lacks %q:\n%s", want, r.stdout)
		}
	}
	if st := clusterState(t, dir); st != "shut down" {
		t.Errorf("cluster state after failed start %q", st)
	}
}

// v071Dir makes a v0.7.1 data dir with seeded rows in database.db (WAL
// mode) and returns its row counts.
func v071Dir(t *testing.T, dir string) map[string]int {
	t.Helper()
	r := startRun(t, "v0.7.1", dir, nil)
	if r.port == "" {
		t.Fatalf("v0.7.1 did not start:\n%s", r.stdout)
	}
	var counts map[string]int
	emulatorCmd(t, dir, &counts, "seed", "--models", "3", "--instances", "4", "--users", "2")
	for _, stmt := range v071Rows {
		emulatorCmd(t, dir, nil, "sql", stmt)
	}
	emulatorCmd(t, dir, &counts, "rows")
	if code := r.stop(); code != 0 {
		t.Fatalf("v0.7.1 exit %d", code)
	}
	return counts
}

// v071Rows fill the other tables `gpustack migrate` copies, on a v0.7.1
// database that holds seeded users, models and instances.
var v071Rows = []string{
	`INSERT INTO workers (created_at, updated_at, name, hostname, ip, state, labels, status, unreachable)
	VALUES ('2025-08-01 10:00:00', '2025-08-01 10:00:00', 'w1', 'host1', '10.0.0.1', 'READY', '{}', '{"gpu_devices": []}', 1)`,
	`INSERT INTO api_keys (created_at, updated_at, name, access_key, hashed_secret_key, user_id)
	VALUES ('2025-08-01 10:00:00', '2025-08-01 10:00:00', 'k1', 'ak1', 'hs1', (SELECT min(id) FROM users))`,
	`INSERT INTO model_files (created_at, updated_at, source, huggingface_repo_id, size, resolved_paths, state, cleanup_on_delete)
	VALUES ('2025-08-01 10:00:00', '2025-08-01 10:00:00', 'HUGGING_FACE', 'org/m', 1234, '["/var/lib/gpustack/cache/m"]', 'READY', 0)`,
	`INSERT INTO modelinstancemodelfilelink (model_instance_id, model_file_id)
	VALUES ((SELECT min(id) FROM model_instances), (SELECT min(id) FROM model_files))`,
	`INSERT INTO model_usages (created_at, updated_at, user_id, model_id, date, prompt_token_count, completion_token_count, request_count, operation)
	VALUES ('2025-08-01 10:00:00', '2025-08-01 10:00:00', (SELECT min(id) FROM users), (SELECT min(id) FROM models), '2025-08-01', 10, 20, 3, 'CHAT_COMPLETION')`,
	`INSERT INTO system_loads (created_at, updated_at, timestamp, cpu, ram, gpu, vram)
	VALUES ('2025-08-01 10:00:00', '2025-08-01 10:00:00', 1754042400, 0.5, 0.25, 0.1, 0.2)`,
}

func TestV2DataMigration(t *testing.T) {
	t.Parallel()
	dir, env := pgTestDir(t)
	before := v071Dir(t, dir)
	sqliteBytes, err := os.ReadFile(filepath.Join(dir, DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	r := v2Run(t, "v2.2.3", dir, env, map[string]string{"GPUSTACK_DATA_MIGRATION": "true"})
	serving(t, r, "v2.2.3")
	var after map[string]int
	emulatorCmd(t, dir, &after, "rows")
	for _, table := range []string{"models", "model_instances", "workers", "api_keys", "model_files", "modelinstancemodelfilelink", "model_usages", "system_loads"} {
		if after[table] != before[table] || after[table] == 0 {
			t.Errorf("%s: %d rows in SQLite, %d in PostgreSQL", table, before[table], after[table])
		}
	}
	w := sqlRows(t, dir, "SELECT unreachable, cluster_id IS NOT NULL AS in_cluster FROM workers")
	if len(w) != 1 || w[0]["unreachable"] != true || w[0]["in_cluster"] != true {
		t.Errorf("workers after the migration: %v", w)
	}
	u := sqlRows(t, dir, "SELECT model_name, prompt_token_count FROM model_usages")
	if len(u) != 1 || u[0]["model_name"] == "" || u[0]["prompt_token_count"] != float64(10) {
		t.Errorf("model_usages after the migration: %v", u)
	}
	users := sqlRows(t, dir, "SELECT count(*) AS n FROM principals WHERE kind = 'USER'")
	if n := users[0]["n"].(float64); int(n) != before["users"] {
		t.Errorf("USER principals %v, SQLite users %d", n, before["users"])
	}
	if rev := pgStamped(t, dir); rev != "c4d7e8f9a0b1" {
		t.Errorf("stamp %s", rev)
	}
	// Sequences were reset: a new model gets a fresh id.
	emulatorCmd(t, dir, nil, "seed", "--models", "1")
	r.stop()
	log := r.stdout.String()
	if !strings.Contains(log, "gpustack.cmd.db_migration - INFO - Migration completed successfully.") {
		t.Errorf("log:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(dir, MigrationDoneFile)); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(dir, BootstrapVersion)); err == nil {
		t.Error("bootstrap_version written by a migrated install")
	}
	if now, _ := os.ReadFile(filepath.Join(dir, DatabaseFile)); string(now) != string(sqliteBytes) {
		t.Error("database.db changed")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "gpustack_migration_temp_*")); len(m) != 0 {
		t.Errorf("temp files left: %v", m)
	}
	// A restart skips the migration.
	r = v2Run(t, "v2.2.3", dir, env, map[string]string{"GPUSTACK_DATA_MIGRATION": "true"})
	serving(t, r, "v2.2.3")
	r.stop()
	if !strings.Contains(r.stdout.String(), "Migration already completed previously. Skipping.") {
		t.Errorf("restart log:\n%s", r.stdout)
	}
}

func TestV2DataMigrationWithoutFlag(t *testing.T) {
	t.Parallel()
	dir, env := pgTestDir(t)
	v071Dir(t, dir)
	r := v2Run(t, "v2.0.3", dir, env, nil)
	serving(t, r, "v2.0.3")
	var after map[string]int
	emulatorCmd(t, dir, &after, "rows")
	r.stop()
	if after["models"] != 0 || after["users"] != 1 {
		t.Errorf("rows %v, want an empty database with the admin", after)
	}
	if !strings.Contains(r.stdout.String(), "but GPUSTACK_DATA_MIGRATION is not set") {
		t.Errorf("log:\n%s", r.stdout)
	}
}

func TestV2DataMigrationFailures(t *testing.T) {
	t.Parallel()
	t.Run("copy", func(t *testing.T) {
		dir, env := pgTestDir(t)
		v071Dir(t, dir)
		knob := map[string]string{"GPUSTACK_DATA_MIGRATION": "true", EnvFailDataMigration: "copy"}
		r := v2Run(t, "v2.2.3", dir, env, knob)
		if r.port != "" || r.code != 1 {
			t.Fatalf("port %q exit %d", r.port, r.code)
		}
		if !strings.Contains(r.stdout.String(), "gpustack.cmd.db_migration - ERROR - Failed to migrate: (psycopg.errors.AdminShutdown)") {
			t.Errorf("log:\n%s", r.stdout)
		}
		if _, err := os.Stat(filepath.Join(dir, MigrationDoneFile)); err == nil {
			t.Error("done-file written")
		}
		// A retry copies into a database that already holds rows (#3596).
		r = v2Run(t, "v2.2.3", dir, env, map[string]string{"GPUSTACK_DATA_MIGRATION": "true"})
		if r.port != "" || r.code != 1 || !strings.Contains(r.stdout.String(), "UniqueViolation") {
			t.Errorf("retry: port %q exit %d:\n%s", r.port, r.code, r.stdout)
		}
	})
	t.Run("after-done", func(t *testing.T) {
		dir, env := pgTestDir(t)
		before := v071Dir(t, dir)
		knob := map[string]string{"GPUSTACK_DATA_MIGRATION": "true", EnvFailDataMigration: "after-done"}
		r := v2Run(t, "v2.0.3", dir, env, knob)
		if r.port != "" || r.code != 0 {
			t.Fatalf("port %q exit %d (v2.0.x exits 0)", r.port, r.code)
		}
		if !strings.Contains(r.stdout.String(), "Error running server: Database migration failed: (psycopg.errors.LockNotAvailable)") {
			t.Errorf("log:\n%s", r.stdout)
		}
		if _, err := os.Stat(filepath.Join(dir, MigrationDoneFile)); err != nil {
			t.Error(err)
		}
		// The restart skips the migration and upgrades what PostgreSQL holds.
		r = v2Run(t, "v2.0.3", dir, env, knob)
		serving(t, r, "v2.0.3")
		var after map[string]int
		emulatorCmd(t, dir, &after, "rows")
		r.stop()
		if after["models"] != before["models"] || !strings.Contains(r.stdout.String(), "Migration already completed previously. Skipping.") {
			t.Errorf("rows %v; log:\n%s", after, r.stdout)
		}
	})
}

func TestV2FailMigrationRollsBack(t *testing.T) {
	t.Parallel()
	dir, env := pgTestDir(t)
	r := v2Run(t, "v2.1.0", dir, env, nil)
	serving(t, r, "v2.1.0")
	r.stop()
	r = v2Run(t, "v2.2.3", dir, env, map[string]string{EnvFailMigration: "7c5e3f9a2d18"})
	if r.port != "" || r.code != 1 {
		t.Fatalf("port %q exit %d", r.port, r.code)
	}
	r = v2Run(t, "v2.1.0", dir, env, nil)
	serving(t, r, "v2.1.0")
	if rev := pgStamped(t, dir); rev != "53667f33f000" {
		t.Errorf("stamp %s after a failed upgrade", rev)
	}
	if out := sqlRows(t, dir, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'model_usage_details'"); out[0]["n"].(float64) != 0 {
		t.Errorf("8bf38a6bb3b5's table survived the rollback")
	}
}

func TestV2Gap5774(t *testing.T) {
	t.Parallel()
	dir, env := pgTestDir(t)
	r := v2Run(t, "v2.2.0rc3", dir, env, map[string]string{EnvV2Gap5774: "1"})
	serving(t, r, "v2.2.0rc3")
	r.stop()
	if strings.Contains(r.stdout.String(), "Failed to flush") {
		t.Errorf("rc3's code does not write completed:\n%s", r.stdout)
	}
	r = v2Run(t, "v2.2.1", dir, env, nil)
	serving(t, r, "v2.2.1")
	if rev := pgStamped(t, dir); rev != "b2c3d4e5f6a7" {
		t.Errorf("stamp %s", rev)
	}
	r.stop()
	want := `gpustack.server.usage_buffer - ERROR - Failed to flush usage details: (psycopg.errors.UndefinedColumn) column "completed" of relation "model_usage_details" does not exist`
	if !strings.Contains(r.stdout.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, r.stdout)
	}
}

func TestV2WrongOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir, env := pgTestDir(t)
	r := v2Run(t, "v2.2.3", dir, env, nil)
	serving(t, r, "v2.2.3")
	r.stop()
	pgdata := filepath.Join(dir, PostgresDataDir)
	// A chmod 777 (#3739's cousin), then a root-owned PGDATA (#3739).
	for _, c := range []struct {
		change func() error
		want   string
	}{
		{func() error { return os.Chmod(pgdata, 0o777) }, "has invalid permissions"},
		{func() error {
			if err := os.Chmod(pgdata, 0o755); err != nil {
				return err
			}
			return os.Chown(pgdata, 0, 0)
		}, "has wrong ownership"},
	} {
		if err := c.change(); err != nil {
			t.Fatal(err)
		}
		r = v2Run(t, "v2.2.3", dir, env, nil)
		if r.port != "" || r.code == 0 {
			t.Fatalf("port %q exit %d", r.port, r.code)
		}
		if out := r.stderr.String() + r.stdout.String(); !strings.Contains(out, c.want) {
			t.Errorf("log lacks PostgreSQL's %q:\n%s", c.want, out)
		}
	}
}

func TestV2Knobs(t *testing.T) {
	t.Parallel()
	dir, env := pgTestDir(t)
	r := v2Run(t, "v2.0.1", dir, env, map[string]string{EnvHealth: "fail", EnvStartupDelay: "100ms", EnvExitAfter: "300ms"})
	serving(t, r, "v2.0.1")
	resp, err := http.Get("http://127.0.0.1:" + r.port + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz %d with HEALTH=fail", resp.StatusCode)
	}
	select {
	case code := <-r.done:
		r.done = nil
		if code != 1 {
			t.Errorf("exit %d after EXIT_AFTER, want 1", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("EXIT_AFTER did not end the run")
	}
	if st := clusterState(t, dir); st != "shut down" {
		t.Errorf("cluster state after the emulated crash %q", st)
	}
	// Unknown knob values are refused.
	r = v2Run(t, "v2.0.1", dir, env, map[string]string{EnvFailDataMigration: "sometimes"})
	if r.code != 2 {
		t.Errorf("bad knob: exit %d", r.code)
	}
}

// TestV2PostgresDirMove: v2.0.0 keeps PGDATA in postgres/data and reads
// GPUSTACK_MIGRATION_DATA_DIR; v2.0.1 moves the directory (#3676).
func TestV2PostgresDirMove(t *testing.T) {
	t.Parallel()
	dir, env := pgTestDir(t)
	before := v071Dir(t, dir)
	r := v2Run(t, "v2.0.0", dir, env, map[string]string{"GPUSTACK_DATA_MIGRATION": "true"})
	serving(t, r, "v2.0.0")
	var counts map[string]int
	emulatorCmd(t, dir, &counts, "rows")
	r.stop()
	if counts["models"] != 0 {
		t.Errorf("v2.0.0 migrated on GPUSTACK_DATA_MIGRATION: %v", counts)
	}
	if _, err := os.Stat(filepath.Join(dir, "postgres", "data", "PG_VERSION")); err != nil {
		t.Fatalf("v2.0.0 PGDATA: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, BootstrapVersion)); err == nil {
		t.Error("v2.0.0 wrote bootstrap_version")
	}
	if counts["clusters"] != 1 || counts["users"] != 2 {
		t.Errorf("v2.0.0 always creates the Default Cluster and its system user: %v", counts)
	}
	r = v2Run(t, "v2.0.1", dir, env, nil)
	serving(t, r, "v2.0.1")
	r.stop()
	if _, err := os.Stat(filepath.Join(dir, PostgresDataDir, "PG_VERSION")); err != nil {
		t.Errorf("v2.0.1 did not move PGDATA: %v", err)
	}
	if !strings.Contains(r.stdout.String(), "Moved PostgreSQL data from") {
		t.Errorf("log:\n%s", r.stdout)
	}

	// v2.0.0's own flag migrates from the directory it names.
	dir2, env2 := pgTestDir(t)
	r = v2Run(t, "v2.0.0", dir2, env2, map[string]string{"GPUSTACK_MIGRATION_DATA_DIR": dir})
	serving(t, r, "v2.0.0")
	emulatorCmd(t, dir2, &counts, "rows")
	r.stop()
	if counts["models"] != before["models"] || counts["model_instances"] != before["model_instances"] {
		t.Errorf("GPUSTACK_MIGRATION_DATA_DIR: %v, want the rows of %v", counts, before)
	}
}

// TestV2DataMigrationUnknownRevision: a SQLite database stamped by a dev
// image cannot be brought to d19176de3b74.
func TestV2DataMigrationUnknownRevision(t *testing.T) {
	t.Parallel()
	dir, env := pgTestDir(t)
	v071Dir(t, dir)
	db := openTestDB(t, dir)
	if _, err := db.Exec("UPDATE alembic_version SET version_num = 'a7c1b20f9d3e'"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r := v2Run(t, "v2.1.2", dir, env, map[string]string{"GPUSTACK_DATA_MIGRATION": "true"})
	if r.port != "" || r.code != 1 {
		t.Fatalf("port %q exit %d", r.port, r.code)
	}
	want := "gpustack.cmd.db_migration - ERROR - Failed to migrate: Can't locate revision identified by 'a7c1b20f9d3e'"
	if !strings.Contains(r.stdout.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, MigrationDoneFile)); err == nil {
		t.Error("done-file written")
	}
}
