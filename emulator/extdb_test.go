package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// extPassword is the password of the external databases of these tests;
// it must never reach a log.
const extPassword = "s3cret-ext-pw"

// externalPG starts a cluster on the host's PostgreSQL 15 (the emulator's
// own start-up code, as the embedded tests do), adds a login role
// ext_user with a password and a database ext_db it owns, and returns the
// URL GPUStack would be given. Password authentication (scram-sha-256 on
// TCP for anyone but root) is in force.
func externalPG(t *testing.T) string {
	t.Helper()
	p, db := startTestPG(t)
	ctx := context.Background()
	for _, stmt := range []string{
		"CREATE ROLE ext_user LOGIN PASSWORD '" + extPassword + "'",
		"CREATE DATABASE ext_db OWNER ext_user",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return fmt.Sprintf("postgresql://ext_user:%s@127.0.0.1:%d/ext_db", extPassword, p.port)
}

// extCmd runs a `gpustack emulator …` subcommand with GPUSTACK_DATABASE_URL
// in its environment (as `docker exec` has it) and decodes its JSON.
func extCmd(t *testing.T, url string, out any, args ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := map[string]string{EnvRelease: "v2.2.3", EnvDatabaseURL: url}
	argv := append([]string{"emulator", args[0], "--data-dir", t.TempDir()}, args[1:]...)
	if code := Main(context.Background(), argv, func(k string) string { return env[k] }, &stdout, &stderr); code != 0 {
		t.Fatalf("%v: exit %d: %s", argv, code, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("%v: %v: %s", argv, err, stdout.String())
	}
}

func extStamp(t *testing.T, url string) string {
	t.Helper()
	var out []map[string]any
	extCmd(t, url, &out, "sql", "SELECT version_num FROM alembic_version")
	if len(out) != 1 {
		t.Fatalf("alembic_version: %v", out)
	}
	return out[0]["version_num"].(string)
}

func noPassword(t *testing.T, r *run) {
	t.Helper()
	if out := r.stdout.String() + r.stderr.String(); strings.Contains(out, extPassword) {
		t.Errorf("the log shows the database password:\n%s", out)
	}
}

// noEmbedded checks that the data dir holds no trace of an embedded
// PostgreSQL.
func noEmbedded(t *testing.T, dir string) {
	t.Helper()
	for _, p := range []string{"postgresql", "postgres", PostgresPassFile} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists in the data dir (%v): no embedded PostgreSQL with --database-url", p, err)
		}
	}
}

// TestExternalFreshFailUpgradeDowngrade: v2.1.2 on an empty external
// database, a failed upgrade that rolls back as a whole, the upgrade to
// v2.2.3, and the downgrade refused — all through GPUSTACK_DATABASE_URL.
func TestExternalFreshFailUpgradeDowngrade(t *testing.T) {
	t.Parallel()
	url := externalPG(t)
	dir := t.TempDir()
	env := map[string]string{EnvDatabaseURL: url}

	r := startRun(t, "v2.1.2", dir, env)
	serving(t, r, "v2.1.2")
	if rev := extStamp(t, url); rev != "8ad0f94c92e8" {
		t.Errorf("stamp %s", rev)
	}
	var counts map[string]int
	extCmd(t, url, &counts, "seed", "--models", "2", "--instances", "3", "--users", "1")
	if counts["models"] != 2 || counts["model_instances"] != 3 || counts["users"] != 2 {
		t.Errorf("after seed: %v", counts)
	}
	if code := r.stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.stdout)
	}
	noPassword(t, r)
	for _, want := range []string{
		"gpustack.cmd.start - INFO - GPUStack version: v2.1.2 (e3b0c44)",
		"Using the external database postgresql://ext_user:xxxxx@127.0.0.1:",
		"gpustack.server.server - INFO - Running database migration.",
		"gpustack.server.server - INFO - Database migration completed.",
	} {
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, r.stdout)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, BootstrapVersion)); err != nil || strings.TrimSpace(string(b)) != "v2.1.2" {
		t.Errorf("bootstrap_version: %q %v", b, err)
	}
	noEmbedded(t, dir)

	// FAIL_MIGRATION at 7c5e3f9a2d18: 8bf38a6bb3b5's table is rolled back too.
	r = startRun(t, "v2.2.3", dir, map[string]string{EnvDatabaseURL: url, EnvFailMigration: "7c5e3f9a2d18"})
	if r.port != "" || r.code != 1 || !strings.Contains(r.stdout.String(), "RuntimeError: Database migration failed:") {
		t.Fatalf("failed upgrade: port %q exit %d:\n%s", r.port, r.code, r.stdout)
	}
	noPassword(t, r)
	if rev := extStamp(t, url); rev != "8ad0f94c92e8" {
		t.Errorf("stamp %s after a failed upgrade", rev)
	}
	var tables []map[string]any
	extCmd(t, url, &tables, "sql", "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'model_usage_details'")
	if tables[0]["n"].(float64) != 0 {
		t.Errorf("8bf38a6bb3b5's table survived the rollback")
	}

	r = startRun(t, "v2.2.3", dir, env)
	serving(t, r, "v2.2.3")
	if rev := extStamp(t, url); rev != "c4d7e8f9a0b1" {
		t.Errorf("stamp after upgrade %s", rev)
	}
	extCmd(t, url, &counts, "rows")
	if counts["models"] != 2 || counts["model_instances"] != 3 || counts["principals"] < 2 {
		t.Errorf("after upgrade: %v", counts)
	}
	resp, err := http.Get("http://127.0.0.1:" + r.port + "/version")
	if err != nil {
		t.Fatal(err)
	}
	var v VersionInfo
	err = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if err != nil || v.Version != "v2.2.3" {
		t.Errorf("/version %+v %v", v, err)
	}
	r.stop()
	noEmbedded(t, dir)

	r = startRun(t, "v2.1.2", dir, env)
	if r.port != "" || r.code != 1 || !strings.Contains(r.stdout.String(), "Can't locate revision identified by 'c4d7e8f9a0b1'") {
		t.Errorf("downgrade: port %q exit %d:\n%s", r.port, r.code, r.stdout)
	}
}

// TestExternalFlagKnobsNoDataMigration: --database-url wins over the env
// var; HEALTH and EXIT_AFTER work; a database.db with
// GPUSTACK_DATA_MIGRATION=true is not migrated.
func TestExternalFlagKnobsNoDataMigration(t *testing.T) {
	t.Parallel()
	url := externalPG(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DatabaseFile), []byte("not opened"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		EnvDatabaseURL:            "postgresql://nobody:wrong@127.0.0.1:1/none",
		"GPUSTACK_DATA_MIGRATION": "true",
		EnvHealth:                 "fail",
		EnvStartupDelay:           "50ms",
		EnvExitAfter:              "500ms",
	}
	r := startRun(t, "v2.0.1", dir, env, "--database-url", url)
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
	noPassword(t, r)
	log := r.stdout.String()
	if strings.Contains(log, logMigrate) || strings.Contains(log, logPrerun) || strings.Contains(log, "SQLite") {
		t.Errorf("the data migration ran or warned with --database-url:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(dir, MigrationDoneFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v", MigrationDoneFile, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, DatabaseFile)); string(b) != "not opened" {
		t.Errorf("database.db changed: %q", b)
	}
	if rev := extStamp(t, url); rev != "e30134bd18dc" {
		t.Errorf("stamp %s", rev)
	}
	noEmbedded(t, dir)
}

// TestExternalUnreachable: a database that never answers ends the start
// after the bounded wait with GPUStack's "Error running server" and no
// password in the log. Not parallel: it shortens externalWait.
func TestExternalUnreachable(t *testing.T) {
	saved := externalWait
	externalWait = time.Second
	defer func() { externalWait = saved }()
	port := freePort(t)
	url := "postgresql://ext_user:" + extPassword + "@127.0.0.1:" + port + "/ext_db"
	for rel, code := range map[string]int{"v2.2.3": 1, "v2.0.3": 0} {
		dir := t.TempDir()
		start := time.Now()
		r := startRun(t, rel, dir, map[string]string{EnvDatabaseURL: url})
		if r.port != "" || r.code != code {
			t.Fatalf("%s: port %q exit %d, want exit %d:\n%s", rel, r.port, r.code, code, r.stdout)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("%s: gave up after %s", rel, d)
		}
		want := "gpustack.cmd.start - ERROR - Error running server: (psycopg.OperationalError) connection to postgresql://ext_user:xxxxx@127.0.0.1:" + port + "/ext_db failed after 1s:"
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("%s: log lacks %q:\n%s", rel, want, r.stdout)
		}
		noPassword(t, r)
		noEmbedded(t, dir)
	}
}

func TestExternalRefusedSchemes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url, want string
		code      int
	}{
		{"mssql://root:" + extPassword + "@db:1433/gpustack", "Error running server: Unsupported database scheme: mssql", 1},
		{"sqlite:///var/lib/gpustack/database.db", "Error running server: Unsupported database scheme: sqlite", 1},
		{"user:" + extPassword + "@db", "Error running server: Unsupported database scheme: ", 1},
	} {
		dir := t.TempDir()
		r := startRun(t, "v2.2.3", dir, map[string]string{EnvDatabaseURL: c.url})
		if r.port != "" || r.code != c.code || !strings.Contains(r.stdout.String(), c.want) {
			t.Errorf("%s: port %q exit %d, want %d and %q:\n%s", c.url, r.port, r.code, c.code, c.want, r.stdout)
		}
		noPassword(t, r)
		noEmbedded(t, dir)
	}
}

func TestParseDatabaseURL(t *testing.T) {
	ext, err := parseDatabaseURL("postgresql://u:p%40ss@db.example:6543/gs?sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	if ext.password != "p@ss" || ext.redacted != "postgresql://u:xxxxx@db.example:6543/gs?sslmode=require" {
		t.Errorf("%+v", ext)
	}
	if !strings.Contains(ext.dsn, "sslmode=require") || !strings.Contains(ext.dsn, "connect_timeout=5") || !strings.HasPrefix(ext.dsn, "postgres://") {
		t.Errorf("dsn %q", ext.dsn)
	}
	if got := ext.mask("x p@ss y p%40ss"); got != "x *** y ***" {
		t.Errorf("mask %q", got)
	}
	ext, err = parseDatabaseURL("postgres://u@h/db")
	if err != nil || !strings.Contains(ext.dsn, "sslmode=disable") || ext.mask("u") != "u" {
		t.Errorf("%+v %v", ext, err)
	}
}

func TestDatabaseURLOf(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	cmdline := func(s string) func() ([]byte, error) {
		return func() ([]byte, error) { return []byte(s), nil }
	}
	noProc := func() ([]byte, error) { return nil, os.ErrNotExist }
	if got := databaseURLOf("", getenv, cmdline("/usr/bin/gpustack\x00start\x00--port\x0080\x00--database-url\x00postgresql://a@b/c\x00")); got != "postgresql://a@b/c" {
		t.Errorf("from PID 1's args: %q", got)
	}
	if got := databaseURLOf("", getenv, cmdline("/usr/bin/gpustack\x00start\x00--database-url=postgresql://d@e/f\x00")); got != "postgresql://d@e/f" {
		t.Errorf("from PID 1's args with =: %q", got)
	}
	if got := databaseURLOf("", getenv, cmdline("/sbin/init\x00--database-url\x00x\x00")); got != "" {
		t.Errorf("PID 1 is not gpustack start: %q", got)
	}
	if got := databaseURLOf("", getenv, noProc); got != "" {
		t.Errorf("no /proc: %q", got)
	}
	env[EnvDatabaseURL] = "postgresql://env@h/db"
	if got := databaseURLOf("", getenv, cmdline("gpustack\x00start\x00--database-url\x00postgresql://arg@h/db")); got != "postgresql://env@h/db" {
		t.Errorf("env before PID 1's args: %q", got)
	}
	if got := databaseURLOf("postgresql://flag@h/db", getenv, noProc); got != "postgresql://flag@h/db" {
		t.Errorf("flag first: %q", got)
	}
}

// TestExternalURLIgnoredBySQLiteEra: a v0.x server keeps database.db
// whatever GPUSTACK_DATABASE_URL says, and so do its subcommands.
func TestExternalURLIgnoredBySQLiteEra(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{EnvDatabaseURL: "postgresql://u:" + extPassword + "@127.0.0.1:1/none"}
	mustServe(t, "v0.7.1", dir, env)
	var stdout, stderr bytes.Buffer
	env[EnvRelease] = "v0.7.1"
	code := Main(context.Background(), []string{"emulator", "rows", "--data-dir", dir}, func(k string) string { return env[k] }, &stdout, &stderr)
	var counts map[string]int
	if code != 0 || json.Unmarshal(stdout.Bytes(), &counts) != nil || counts["users"] != 1 {
		t.Errorf("rows: exit %d %s %s", code, stdout.String(), stderr.String())
	}
}
