package e2e

import (
	"encoding/json"
	"testing"
)

func TestUpgradeChain(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "chain", options{version: "v0.4.1"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	rows := d.seed("--models", "3", "--instances", "2")
	if rows["models"] != 3 || rows["model_instances"] != 2 || rows["users"] < 1 {
		t.Fatalf("seeded rows: %v", rows)
	}

	steps := []struct {
		version, tag, head string
		fromTag, fromHead  string
	}{
		{"v0.5.1", "v0.5.1-cpu", head051, "v0.4.1-cpu", head041},
		{"v0.6.0", "v0.6.0-cpu", head060, "v0.5.1-cpu", head051},
	}
	for i, s := range steps {
		before := d.mustInspect()
		r := d.gsd("apply", "--auto-approve", "--var", "version="+s.version)
		expectCode(t, r, 0)
		expectOutput(t, r,
			"-/+ replace container "+d.container+" "+s.fromTag+" -> "+s.tag,
			"migrate database "+s.fromHead+" -> "+s.head,
			d.name+": applied and verified")

		backups := d.backupList()
		if len(backups) != i+1 {
			t.Fatalf("after the upgrade to %s: %d backups on disk, want %d: %+v", s.version, len(backups), i+1, backups)
		}
		b := backups[i]
		if !b.Verified || b.Deployment != d.name || b.Revision != s.fromHead || b.Version != s.fromTag {
			t.Errorf("backup before %s: %+v, want verified, deployment %s, revision %s, version %s", s.version, b, d.name, s.fromHead, s.fromTag)
		}
		expectRowsKept(t, map[string]int64{"models": rows["models"], "model_instances": rows["model_instances"], "users": rows["users"]}, b.Rows)
		expectOutput(t, r, "backup taken before the change: "+b.ID)

		ct := d.expectRunning(s.tag, s.head)
		if ct.ID == before.ID {
			t.Errorf("the container was not replaced (same id %.12s)", ct.ID)
		}
		if ct.HostConfig.RestartPolicy.Name != "unless-stopped" {
			t.Errorf("restart policy %q after verification, want unless-stopped", ct.HostConfig.RestartPolicy.Name)
		}
		expectRowsKept(t, rows, d.rows())
	}

	r := d.gsd("backups", "--json")
	expectCode(t, r, 0)
	var listed map[string][]manifest
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil {
		t.Fatalf("backups --json: %v\n%s", err, r.stdout)
	}
	onDisk := d.backupList()
	if len(listed[d.name]) != len(onDisk) {
		t.Fatalf("backups --json lists %d backups of %s, %d on disk", len(listed[d.name]), d.name, len(onDisk))
	}
	for i, m := range listed[d.name] { // newest first
		want := onDisk[len(onDisk)-1-i]
		if m.ID != want.ID || m.Revision != want.Revision || !m.Verified {
			t.Errorf("backups --json [%d] = %+v, want %+v", i, m, want)
		}
	}
	r = d.gsd("backups")
	expectCode(t, r, 0)
	for _, m := range onDisk {
		expectOutput(t, r, m.ID)
	}

	r = d.gsd("plan", "--detailed-exitcode", "--var", "version=v0.6.0")
	expectCode(t, r, 0)
}

func TestDevTagRefused(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "devtag", options{version: "v0.5.1"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	before := d.mustInspect()

	for _, args := range [][]string{
		{"plan", "--var", "version=main"},
		{"plan", "--detailed-exitcode", "--var", "version=main"},
		{"apply", "--auto-approve", "--var", "version=main"},
	} {
		r := d.gsd(args[0], args[1:]...)
		expectCode(t, r, 1)
		expectOutput(t, r,
			`refused (dev-tag): "main-cpu" is a development tag`,
			`Instead: Pin a release, e.g. version = "v0.5.1".`, // the release that runs
			"Nothing will be changed.")
	}

	d.expectUnchanged(before)
	d.expectRunning("v0.5.1-cpu", head051)
	if b := d.backupList(); len(b) != 0 {
		t.Errorf("a refused apply took backups: %+v", b)
	}
}

func TestDowngradeRefused(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "downgrade", options{version: "v0.5.1"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	expectCode(t, d.gsd("apply", "--auto-approve", "--var", "version=v0.6.0"), 0)
	d.expectRunning("v0.6.0-cpu", head060)
	before := d.mustInspect()
	backups := d.backupList()

	for _, args := range [][]string{
		{"plan", "--var", "version=v0.5.1"},
		{"apply", "--auto-approve", "--var", "version=v0.5.1"},
	} {
		r := d.gsd(args[0], args[1:]...)
		expectCode(t, r, 1)
		expectOutput(t, r,
			"refused (database-ahead): the database is at revision "+head060+", newer than v0.5.1",
			`Set version = "v0.6.0"`)
	}

	d.expectUnchanged(before)
	d.expectRunning("v0.6.0-cpu", head060)
	if after := d.backupList(); len(after) != len(backups) {
		t.Errorf("a refused apply changed the backups: %d before, %d after", len(backups), len(after))
	}
}
