package e2e

import (
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/emulator/image"
)

// TestExternalMySQLHalfAppliedMigrationUndone runs v2 on an external MySQL
// (MariaDB). MySQL DDL is not transactional: a migration that fails
// halfway leaves new columns behind with the old stamp (#3202), and every
// later start fails on "Duplicate column name". The dump taken before the
// upgrade undoes it: the old release runs again on its rows, and the next
// upgrade passes.
func TestExternalMySQLHalfAppliedMigrationUndone(t *testing.T) {
	needPostgres(t)
	dbURL := startExternalMySQL(t)

	o := v2Options("v2.1.2")
	o.variables = `variable "database_url" { sensitive = true }` + "\n" + `variable "fail" { default = "" }`
	o.body = `  database_url = var.database_url
  env = { GPUSTACK_EMULATOR_FAIL_MIGRATION = var.fail }`
	o.backup = `tool_image = "` + image.PostgresBaseRef() + `"`
	o.health = "20s"
	d := newDeployment(t, "extmy", o)
	d.env = append(d.env, "GPUSTACK_DEPLOY_VAR_database_url="+dbURL)

	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	if got := externalMySQLRevision(t, dbURL); got != head212 {
		t.Fatalf("the external database is at %q after installing v2.1.2, want %s", got, head212)
	}
	before := d.seed()
	plan := d.gsd("plan", "--var", "version=v2.2.3")
	expectCode(t, plan, 0)
	expectOutput(t, plan, "external mysql database, read", "MySQL can half-apply a migration")

	// 7c5e3f9a2d18 fails after the revisions before it changed the schema.
	failing := d.gsd("apply", "--auto-approve", "--var", "version=v2.2.3", "--var", "fail=7c5e3f9a2d18")
	expectCode(t, failing, 3)
	expectOutput(t, failing, "Database migration failed", "rolled back")
	if got := externalMySQLRevision(t, dbURL); got != head212 {
		t.Errorf("after the rollback the external database is at %q, want %s", got, head212)
	}
	ct := d.mustInspect()
	if ct.Config.Image != repository+":v2.1.2" || !ct.State.Running {
		t.Errorf("after the rollback %s runs %s (%s), want v2.1.2 running", d.container, ct.Config.Image, ct.State.Status)
	}
	expectRowsKept(t, before, d.rows())
	// The restore left no trace of the half-applied revisions: the plan
	// reads the database again and finds nothing to refuse.
	again := d.gsd("plan", "--var", "version=v2.2.3")
	expectCode(t, again, 0)

	expectCode(t, d.gsd("apply", "--auto-approve", "--var", "version=v2.2.3"), 0)
	if got := externalMySQLRevision(t, dbURL); got != head223 {
		t.Errorf("after the upgrade the external database is at %q, want %s", got, head223)
	}
	expectMigrated(t, before, d.rows())
	expectCode(t, d.gsd("plan", "--detailed-exitcode", "--var", "version=v2.2.3"), 0)
}
