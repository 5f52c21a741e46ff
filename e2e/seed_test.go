package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDevTagFailureRollsBackOnItsOwn is the seed failure met through the
// file: v0.5.1 holds rows, the file is switched to main-cpu with
// allow_dev = true, the development image half-applies c45e397531d1 and
// dies with "no such column: model_instances.resolved_path" (exit code 0).
// apply must see it in the log, restore the pre-upgrade backup and bring
// v0.5.1 back with every row.
func TestDevTagFailureRollsBackOnItsOwn(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "seed", options{version: "v0.5.1", policy: "allow_dev = true"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	rows := d.seed("--models", "4", "--instances", "3", "--users", "2")
	before := d.mustInspect()

	r := d.gsd("apply", "--auto-approve", "--var", "version=main")
	expectCode(t, r, 3)
	expectOutput(t, r,
		"main-cpu is a development image (allowed by policy)",
		"no such column: model_instances.resolved_path",
		"rolled back: the previous version runs again",
	)
	back := d.expectRunning("v0.5.1-cpu", head051)
	if back.ID != before.ID {
		t.Errorf("after the rollback %.12s runs, want the original container %.12s", back.ID, before.ID)
	}
	expectRowsKept(t, rows, d.rows())
	if n := len(d.backupList()); n != 1 {
		t.Errorf("%d backups, want the one taken before the dev image ran", n)
	}
}

// TestFailedUpgradeFrom051RollsBack: a v0.5.1 → v0.6.0 migration that fails
// half-way goes back on its own, and the file can then be applied again
// once the failure is gone.
func TestFailedUpgradeFrom051RollsBack(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "fail051", options{
		version:   "v0.5.1",
		variables: `variable "fail" { default = "" }`,
		body:      `  env = { GPUSTACK_EMULATOR_FAIL_MIGRATION = var.fail }`,
	})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	rows := d.seed("--models", "2", "--instances", "2")

	r := d.gsd("apply", "--auto-approve", "--var", "version=v0.6.0", "--var", "fail=any")
	expectCode(t, r, 3)
	// v0.4–v0.6 log the raw cause after "Error running server" (the
	// "Database migration failed" wrapper came with v0.7.0).
	expectOutput(t, r, "Error running server: (sqlite3.OperationalError)", "database restored from backup")
	d.expectRunning("v0.5.1-cpu", head051)
	expectRowsKept(t, rows, d.rows())

	// The half-applied columns went away with the restore: the same upgrade
	// without the fault now succeeds and keeps the rows.
	expectCode(t, d.gsd("apply", "--auto-approve", "--var", "version=v0.6.0"), 0)
	d.expectRunning("v0.6.0-cpu", head060)
	after := d.rows()
	for _, table := range []string{"models", "users"} {
		if after[table] != rows[table] {
			t.Errorf("%s: %d rows after the upgrade, want %d", table, after[table], rows[table])
		}
	}
}

// TestRestoreRefusesDamagedBackup: one flipped byte in a backup makes
// restore refuse it before anything changes.
func TestRestoreRefusesDamagedBackup(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "damaged", options{version: "v0.5.1"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	d.seed("--models", "2")
	expectCode(t, d.gsd("backup"), 0)
	backups := d.backupList()
	if len(backups) != 1 {
		t.Fatalf("want one backup, got %+v", backups)
	}
	path := filepath.Join(d.backups, backups[0].ID, "database.db")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	before := d.mustInspect()

	r := d.gsd("restore", backups[0].ID, "--auto-approve")
	expectCode(t, r, 1)
	expectOutput(t, r, "database.db does not match its manifest", "Nothing was changed")
	d.expectUnchanged(before)
	if n := len(d.backupList()); n != 1 {
		t.Errorf("%d backup directories after a refused restore, want 1 (no safety copy taken)", n)
	}
}
