package e2e

import (
	"slices"
	"strings"
	"testing"
)

// Alembic heads of the v2 releases the suite deploys.
const (
	head071 = "d19176de3b74"
	head223 = "c4d7e8f9a0b1"
)

// migratedTables are the tables v2 copies out of a v0.x SQLite database.
var migratedTables = []string{
	"system_loads", "workers", "users", "api_keys", "model_files", "models",
	"model_instances", "modelinstancemodelfilelink", "model_usages",
}

// expectMigrated checks that every migrated table holds at least the rows
// it had in v0.x; v2.2 keeps users as principals.
func expectMigrated(t testing.TB, before, after map[string]int64) {
	t.Helper()
	for _, table := range migratedTables {
		n, ok := before[table]
		if !ok {
			continue
		}
		got, ok := after[table]
		if table == "users" && !ok {
			got, ok = after["principals"]
		}
		if !ok || got < n {
			t.Errorf("table %s: %d rows after the migration (present %v), want at least %d", table, got, ok, n)
		}
	}
}

// v2Options are a v2 deployment's file options: no variant, no legacy flag.
func v2Options(version string) options {
	return options{version: version, variant: "none", args: "[]"}
}

// TestJumpFromV071KeepsEveryRow takes a v0.7.1 deployment with rows to
// v2.2.3 in one planned step: a whole-volume backup, the one-time data
// migration, then the container recreated without the switch.
func TestJumpFromV071KeepsEveryRow(t *testing.T) {
	needPostgres(t)
	d := newDeployment(t, "jump", options{version: "v0.7.1"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	d.expectRunning("v0.7.1-cpu", head071)
	before := d.seed()

	d.write(v2Options("v2.2.3"))
	p := d.gsd("plan")
	expectCode(t, p, 0)
	expectOutput(t, p, "migrate data to PostgreSQL", "v2.2.3")
	if strings.Contains(p.output(), "REFUSED") {
		t.Fatalf("the jump is refused:\n%s", p.output())
	}

	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	ct := d.expectRunning("v2.2.3", head223)
	for _, kv := range ct.Config.Env {
		if strings.HasPrefix(kv, "GPUSTACK_DATA_MIGRATION=") || strings.HasPrefix(kv, "GPUSTACK_MIGRATION_DATA_DIR=") {
			t.Errorf("the migration switch %s stayed on the container", kv)
		}
	}
	expectMigrated(t, before, d.rows())
	execIn(t, d.container, "test", "-f", "/var/lib/gpustack/run/state_migration_done")
	execIn(t, d.container, "test", "-f", "/var/lib/gpustack/database.db")

	var volumeBackup bool
	for _, m := range d.backupList() {
		if m.Version == "v0.7.1-cpu" && m.Verified && m.Revision == head071 {
			volumeBackup = true
		}
	}
	if !volumeBackup {
		t.Errorf("no verified backup of the v0.7.1 volume: %+v", d.backupList())
	}

	again := d.gsd("plan", "--detailed-exitcode")
	expectCode(t, again, 0)
	expectOutput(t, again, "No changes")
}

// TestFailedJumpRestoresTheWholeVolume fails the first v2 start after the
// done-file is written (the #3575 strand): the rollback restores the whole
// data volume, so the done-file is gone, v0.7.1 runs again on its rows,
// and a later apply without the fault migrates for real.
func TestFailedJumpRestoresTheWholeVolume(t *testing.T) {
	needPostgres(t)
	needToolbox(t)
	d := newDeployment(t, "jumpfail", options{version: "v0.7.1"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	d.expectRunning("v0.7.1-cpu", head071)
	before := d.seed()

	failing := v2Options("v2.2.3")
	failing.body = `env = { GPUSTACK_EMULATOR_FAIL_DATA_MIGRATION = "after-done" }`
	d.write(failing)
	res := d.gsd("apply", "--auto-approve")
	expectCode(t, res, 3)
	expectOutput(t, res, "rolled back")

	d.expectRunning("v0.7.1-cpu", head071)
	expectRowsKept(t, before, d.rows())
	listing := execIn(t, d.container, "ls", "-a", "/var/lib/gpustack")
	if !strings.Contains(listing, "database.db") {
		t.Fatalf("the listing of the data directory lacks database.db:\n%s", listing)
	}
	for _, leftover := range []string{"run", "postgresql", "postgres_root_pass"} {
		if slices.Contains(strings.Fields(listing), leftover) {
			t.Errorf("%s survived the rollback:\n%s", leftover, listing)
		}
	}

	d.write(v2Options("v2.2.3"))
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	d.expectRunning("v2.2.3", head223)
	expectMigrated(t, before, d.rows())
}
