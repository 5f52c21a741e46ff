package image

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// externalMySQL starts a MariaDB container of the base image
// (ExternalMySQLEntrypoint) on the default bridge and returns its id, the
// URL for GPUStack and the password in it.
func externalMySQL(t *testing.T, cli client.APIClient, base string) (id, url, password string) {
	t.Helper()
	return externalServer(t, cli, base, "gpustack-emu-extmysql-", ExternalMySQLPasswordEnv,
		ExternalMySQLEntrypoint(), ExternalMySQLReady(), ExternalMySQLURL)
}

// TestV2ExternalMySQL: v2.1.2 and then v2.2.3 on an external MariaDB given
// by GPUSTACK_DATABASE_URL only, read with the mysql client in the
// database container; then, on an emptied database, an injected failure
// that leaves a half-applied revision and the rerun's "Duplicate column
// name" (#3202).
func TestV2ExternalMySQL(t *testing.T) {
	cli := engine(t)
	base := needPostgresBase(t, cli)
	ctx := context.Background()
	v212, _ := SpecFor("gpustack/gpustack", "v2.1.2")
	v223, _ := SpecFor("gpustack/gpustack", "v2.2.3")
	start := time.Now()
	if err := Build(ctx, cli, moduleRoot(t), v212, v223); err != nil {
		t.Fatal(err)
	}
	t.Logf("build: %s", time.Since(start).Round(time.Millisecond))
	dbID, url, password := externalMySQL(t, cli, base)
	mysqlQ := func(q string) string {
		t.Helper()
		return strings.TrimSpace(execIn(t, cli, dbID, ExternalMySQLClient(q)...))
	}
	dbRows := func() map[string]int64 {
		t.Helper()
		counts, err := ParseExternalMySQLRows(mysqlQ(ExternalMySQLRowsQuery))
		if err != nil {
			t.Fatal(err)
		}
		return counts
	}
	noSecret := func(id string) {
		t.Helper()
		if l := logs(t, cli, id); strings.Contains(l, password) {
			t.Errorf("the container log shows the database password:\n%s", l)
		}
	}
	if rev := mysqlQ(ExternalMySQLRevisionQuery); rev != "" {
		t.Errorf("revision of an empty database %q", rev)
	}
	if rows := dbRows(); len(rows) != 0 {
		t.Errorf("rows of an empty database %v", rows)
	}

	vol := newVolume(t, cli)
	env := "GPUSTACK_DATABASE_URL=" + url
	id, took := healthyOn(t, cli, v212.Ref, vol, env)
	t.Logf("v2.1.2 on MariaDB to healthy: %s", took.Round(time.Millisecond))
	if rev := mysqlQ(ExternalMySQLRevisionQuery); rev != "8ad0f94c92e8" {
		t.Errorf("revision %q", rev)
	}
	var counts map[string]int64
	if err := json.Unmarshal([]byte(execIn(t, cli, id, "gpustack", "emulator", "seed", "--models", "2", "--instances", "2")), &counts); err != nil {
		t.Fatal(err)
	}
	if counts["models"] != 2 || counts["model_instances"] != 2 || counts["users"] != 1 {
		t.Errorf("seed through GPUSTACK_DATABASE_URL: %v", counts)
	}
	if got := dbRows(); fmt.Sprint(got) != fmt.Sprint(counts) {
		t.Errorf("rows read in the database container %v, through the emulator %v", got, counts)
	}
	if out := execIn(t, cli, id, "sh", "-c", "test ! -e /var/lib/gpustack/postgresql && test ! -e /var/lib/gpustack/postgres_root_pass && echo none"); out != "none\n" {
		t.Errorf("data volume: %q", out)
	}
	noSecret(id)
	t.Logf("stop: %s", stop(t, cli, id).Round(time.Millisecond))

	id, took = healthyOn(t, cli, v223.Ref, vol, env)
	t.Logf("upgrade v2.1.2 → v2.2.3 on MariaDB to healthy: %s", took.Round(time.Millisecond))
	if rev := mysqlQ(ExternalMySQLRevisionQuery); rev != "c4d7e8f9a0b1" {
		t.Errorf("revision after upgrade %q", rev)
	}
	if rev := strings.TrimSpace(execIn(t, cli, id, "gpustack", "emulator", "sql", "SELECT version_num FROM alembic_version")); rev != `[{"version_num":"c4d7e8f9a0b1"}]` {
		t.Errorf("revision through the emulator %s", rev)
	}
	after := dbRows()
	if after["models"] != 2 || after["model_instances"] != 2 || after["principals"] < 1 || after["users"] != 0 {
		t.Errorf("rows after upgrade %v", after)
	}
	noSecret(id)
	stop(t, cli, id)

	// #3202 on an emptied database: v2.1.2 fails in 2aed534bd7b2.
	mysqlQ("DROP DATABASE gpustack; CREATE DATABASE gpustack CHARACTER SET utf8mb4")
	vol = newVolume(t, cli)
	id = startOn(t, cli, v212.Ref, vol, env, "GPUSTACK_EMULATOR_FAIL_MIGRATION=2aed534bd7b2")
	if code := exited(t, cli, id); code != 1 {
		t.Errorf("failed migration: exit %d", code)
	}
	if l := logs(t, cli, id); !strings.Contains(l, "RuntimeError: Database migration failed: (pymysql.err.OperationalError) (1205,") {
		t.Errorf("failed migration log:\n%s", l)
	}
	noSecret(id)
	if rev := mysqlQ(ExternalMySQLRevisionQuery); rev != "e30134bd18dc" {
		t.Errorf("revision after the failure %q, want the previous one", rev)
	}
	if cols := mysqlQ("SELECT column_name FROM information_schema.columns WHERE table_schema = 'gpustack' AND table_name = 'workers' AND column_name IN ('proxy_mode', 'maintenance') ORDER BY 1"); cols != "maintenance\nproxy_mode" {
		t.Errorf("half-applied 2aed534bd7b2: workers has %q", cols)
	}
	id = startOn(t, cli, v212.Ref, vol, env)
	if code := exited(t, cli, id); code != 1 {
		t.Errorf("rerun: exit %d", code)
	}
	want := `RuntimeError: Database migration failed: (pymysql.err.OperationalError) (1060, "Duplicate column name 'proxy_mode'")`
	if l := logs(t, cli, id); !strings.Contains(l, want) {
		t.Errorf("rerun log lacks %q:\n%s", want, l)
	}
	noSecret(id)
}
