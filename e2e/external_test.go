package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/emulator/image"
)

// TestExternalPostgresDumpedAndRestored runs v2 on an external PostgreSQL.
// An upgrade whose new release fails after it migrated the database is
// undone with the dump taken before it: the database is back at the old
// revision with its rows, and the old release runs again. The next upgrade
// passes. The URL's password is never in any output or file.
func TestExternalPostgresDumpedAndRestored(t *testing.T) {
	needPostgres(t)
	dbURL := startExternalPostgres(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	if len(password) < 8 {
		t.Fatalf("the external database's password %q is too short to grep for", password)
	}

	o := v2Options("v2.1.2")
	o.variables = `variable "database_url" { sensitive = true }` + "\n" + `variable "health" { default = "" }`
	o.body = `  database_url = var.database_url
  env = { GPUSTACK_EMULATOR_HEALTH = var.health }`
	o.backup = `tool_image = "` + image.PostgresBaseRef() + `"`
	o.health = "10s"
	d := newDeployment(t, "extpg", o)
	d.env = append(d.env, "GPUSTACK_DEPLOY_VAR_database_url="+dbURL)
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.output()); return r }

	first := keep(d.gsd("apply", "--auto-approve"))
	expectCode(t, first, 0)
	expectOutput(t, first, "external postgresql database")
	if got := externalRevision(t, dbURL); got != head212 {
		t.Fatalf("the external database is at %q after installing v2.1.2, want %s", got, head212)
	}
	before := d.seed()

	// v2.2.3 migrates the database, then never answers /healthz.
	failing := keep(d.gsd("apply", "--auto-approve", "--var", "version=v2.2.3", "--var", "health=fail"))
	expectCode(t, failing, 3)
	expectOutput(t, failing, "backup", "rolled back")
	if got := externalRevision(t, dbURL); got != head212 {
		t.Errorf("after the rollback the external database is at %q, want %s again", got, head212)
	}
	ct := d.mustInspect()
	if ct.Config.Image != repository+":v2.1.2" || !ct.State.Running {
		t.Errorf("after the rollback %s runs %s (%s), want v2.1.2 running", d.container, ct.Config.Image, ct.State.Status)
	}
	expectRowsKept(t, before, d.rows())
	var dumps int
	for _, m := range d.backupList() {
		if m.Verified && m.Revision == head212 {
			dumps++
		}
	}
	if dumps != 1 {
		t.Errorf("want one verified dump at %s, got %+v", head212, d.backupList())
	}

	passing := keep(d.gsd("apply", "--auto-approve", "--var", "version=v2.2.3"))
	expectCode(t, passing, 0)
	if got := externalRevision(t, dbURL); got != head223 {
		t.Errorf("after the upgrade the external database is at %q, want %s", got, head223)
	}
	expectMigrated(t, before, d.rows())
	keep(d.gsd("plan", "--json", "--var", "version=v2.2.3"))
	keep(d.gsd("status", "--json"))
	keep(d.gsd("backups"))
	// An on-demand backup of the external database is a dump too.
	onDemand := keep(d.gsd("backup", "--var", "version=v2.2.3"))
	expectCode(t, onDemand, 0)
	expectOutput(t, onDemand, head223)

	for i, out := range outputs {
		if strings.Contains(out, password) {
			t.Errorf("output %d reveals the database password", i)
		}
	}
	for _, dir := range []string{d.dir} {
		_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || strings.HasSuffix(p, ".pgdump") {
				return err
			}
			b, err := os.ReadFile(p)
			if err == nil && strings.Contains(string(b), password) {
				t.Errorf("%s holds the database password", p)
			}
			return nil
		})
	}
}
