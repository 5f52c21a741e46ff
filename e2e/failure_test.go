package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFailedMigrationRollsBack(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "failmig", options{
		version:   "v0.6.0",
		variables: `variable "fail" { default = "" }`,
		body:      `  env = { GPUSTACK_EMULATOR_FAIL_MIGRATION = var.fail }`,
	})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	rows := d.seed("--models", "3", "--instances", "2")
	before := d.expectRunning("v0.6.0-cpu", head060)

	r := d.gsd("apply", "--auto-approve", "--var", "version=v0.7.1", "--var", "fail=any")
	expectCode(t, r, 3)
	expectOutput(t, r, "FAILED (migration failed), rolled back", "Database migration failed")
	var logLine string
	for _, l := range strings.Split(r.stdout, "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(l), "log:"); ok && strings.Contains(s, "Database migration failed") {
			logLine = strings.TrimSpace(s)
		}
	}
	if logLine == "" {
		t.Errorf("the report quotes no log line with the failure; output:\n%s", r.output())
	}

	logs, _ := filepath.Glob(filepath.Join(d.backups, "failed-*.log"))
	if len(logs) != 1 {
		t.Fatalf("failed container logs in %s: %v, want one", d.backups, logs)
	}
	expectOutput(t, r, "full log of the failed container: "+logs[0])
	saved, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	if logLine != "" && !bytes.Contains(saved, []byte(logLine)) {
		t.Errorf("%s lacks the reported line %q", logs[0], logLine)
	}
	if b := d.backupList(); len(b) != 1 || b[0].Revision != head060 || !b[0].Verified {
		t.Errorf("backups: %+v, want one verified at %s", b, head060)
	}

	after := d.expectRunning("v0.6.0-cpu", head060)
	if after.ID != before.ID || after.Image != before.Image {
		t.Errorf("after the rollback %.12s (%s) runs, want the previous container %.12s (%s)", after.ID, after.Image, before.ID, before.Image)
	}
	if after.HostConfig.RestartPolicy.Name != "unless-stopped" {
		t.Errorf("restart policy %q after the rollback, want unless-stopped", after.HostConfig.RestartPolicy.Name)
	}
	now := d.rows()
	for table, n := range rows {
		if now[table] != n {
			t.Errorf("table %s: %d rows after the rollback, %d before", table, now[table], n)
		}
	}
	if len(now) != len(rows) {
		t.Errorf("tables after the rollback %v, before %v", now, rows)
	}
	// As it was: the old file plans nothing, the upgrade is offered again.
	expectCode(t, d.gsd("plan", "--detailed-exitcode"), 0)
	expectCode(t, d.gsd("plan", "--detailed-exitcode", "--var", "version=v0.7.1"), 2)
}

func TestHealthTimeoutRollsBack(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "health", options{
		version:   "v0.5.1",
		variables: `variable "health" { default = "" }`,
		body:      `  env = { GPUSTACK_EMULATOR_HEALTH = var.health }`,
		health:    "5s",
	})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	rows := d.seed("--models", "2", "--instances", "1")
	before := d.mustInspect()

	start := time.Now()
	r := d.gsd("apply", "--auto-approve", "--var", "version=v0.6.0", "--var", "health=fail")
	expectCode(t, r, 3)
	expectOutput(t, r, "FAILED (health timeout), rolled back", "/healthz within 5s")
	if took := time.Since(start); took < 5*time.Second {
		t.Errorf("the apply gave up after %s, before the 5s health timeout", took)
	}

	// The failing container had migrated to c45e397531d1: the backup put
	// the database back at the old head.
	after := d.expectRunning("v0.5.1-cpu", head051)
	if after.ID != before.ID {
		t.Errorf("after the rollback %.12s runs, want the previous container %.12s", after.ID, before.ID)
	}
	expectRowsKept(t, rows, d.rows())
	expectCode(t, d.gsd("plan", "--detailed-exitcode"), 0)
}

func TestInterruptedApplyConverges(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "interrupt", options{
		version:   "v0.5.1",
		variables: `variable "delay" { default = "" }`,
		body:      `  env = { GPUSTACK_EMULATOR_STARTUP_DELAY = var.delay }`,
	})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	rows := d.seed("--models", "3", "--instances", "2")
	old := d.mustInspect()
	upgrade := []string{"apply", "-f", d.file, "--auto-approve", "--var", "version=v0.6.0", "--var", "delay=3s"}
	d.killApplyOnceCreated(old.ID, repository+":v0.6.0-cpu", upgrade...)

	r := d.run(upgrade...)
	expectCode(t, r, 0)
	expectOutput(t, r, "the previous apply was interrupted", "cleared a stale lock", "applied and verified")

	d.expectRunning("v0.6.0-cpu", head060)
	expectRowsKept(t, rows, d.rows())
	found := false
	for _, b := range d.backupList() {
		found = found || (b.Verified && b.Revision == head051)
	}
	if !found {
		t.Errorf("no verified backup at %s: %+v", head051, d.backupList())
	}
	expectCode(t, d.gsd("plan", "--detailed-exitcode", "--var", "version=v0.6.0", "--var", "delay=3s"), 0)
}

// TestInterruptedApplyRerunRollsBack: when the run that resumes an
// interrupted upgrade fails, the release that ran before the interrupted
// run comes back, as the container it kept aside.
func TestInterruptedApplyRerunRollsBack(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "rerunfail", options{
		version:   "v0.5.1",
		variables: `variable "delay" { default = "" }` + "\n" + `variable "health" { default = "" }`,
		body:      `  env = { GPUSTACK_EMULATOR_STARTUP_DELAY = var.delay, GPUSTACK_EMULATOR_HEALTH = var.health }`,
		health:    "5s",
	})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	rows := d.seed("--models", "3", "--instances", "2")
	old := d.mustInspect()
	upgrade := []string{"apply", "-f", d.file, "--auto-approve", "--var", "version=v0.6.0", "--var", "delay=4s", "--var", "health=fail"}
	d.killApplyOnceCreated(old.ID, repository+":v0.6.0-cpu", upgrade...)

	r := d.run(upgrade...)
	if r.code != 3 { // go on: the state says more than the code
		t.Errorf("exit code %d, want 3 (failed, rolled back)", r.code)
	}
	expectOutput(t, r, "the previous apply was interrupted", "rolled back: the previous version runs again")

	back := d.expectRunning("v0.5.1-cpu", head051)
	if back.ID != old.ID {
		t.Errorf("after the rollback %.12s (%s) runs, want %.12s, the v0.5.1 container kept aside by the interrupted apply", back.ID, back.Config.Image, old.ID)
	}
	expectRowsKept(t, rows, d.rows())
}

// killApplyOnceCreated starts `gpustack-deploy args…` and kills it (SIGKILL)
// as soon as the deployment's container is a new one running ref, with the
// previous container kept aside.
func (d *deployment) killApplyOnceCreated(oldID, ref string, args ...string) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := d.command(ctx, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		if ct := inspect(d.t, d.container); ct != nil && ct.ID != oldID && ct.Config.Image == ref {
			break
		}
		select {
		case err := <-done:
			d.t.Fatalf("the apply ended (%v) before the new container appeared:\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		d.t.Fatal(err)
	}
	<-done
	d.t.Logf("killed the apply once %s existed; its output:\n%s", ref, out.String())
	if strings.Contains(out.String(), "applied and verified") {
		d.t.Fatalf("the apply finished before it was killed; the test proves nothing")
	}
	if prev := inspect(d.t, d.container+previousSuffix); prev == nil || prev.ID != oldID {
		d.t.Fatalf("the killed apply did not keep the old container aside as %s%s", d.container, previousSuffix)
	}
}
