//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// The fault suite (issue 6): an upgrade v0.5.1 → v0.6.0 killed at every
// step of its real plan, two applies at once, and backup directories that
// cannot take a backup.

// faultUpgrade is the upgrade every fault test runs.
var faultUpgrade = []string{"--auto-approve", "--var", "version=v0.6.0"}

// journalRecord is the part of a journal line the suite reads.
type journalRecord struct {
	Event  string `json:"event"`
	Step   int    `json:"step"`
	Action string `json:"action"`
	Detail string `json:"detail"`
}

// planAction is the part of an action of `plan --json` the suite reads.
type planAction struct {
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
}

// TestFaultKillMatrix kills an upgrade with SIGKILL as soon as its journal
// records each step of the plan as started, and as done, and twice in the
// middle of the backup; every time, a re-run must converge with every row.
//
// "As soon as the journal records X" is not "exactly at X": the journal
// and backup directories are watched with inotify, the apply is frozen
// (SIGSTOP) on each change while the journal is read, and killed once the
// line is there. The freeze lands after the write, usually within
// microseconds, sometimes a step later under load (a step that takes no
// time, such as migrate-database, run by GPUStack at start, is easily
// passed). Each subtest logs the journal as the killed run left it, which
// shows where the kill really landed.
func TestFaultKillMatrix(t *testing.T) {
	t.Parallel()
	// The matrix follows the real plan of the upgrade, read from plan --json.
	probe := newDeployment(t, "killplan", options{version: "v0.5.1"})
	expectCode(t, probe.gsd("apply", "--auto-approve"), 0)
	probe.seed("--models", "1")
	actions := probe.planActions("--var", "version=v0.6.0")
	if len(actions) < 3 {
		t.Fatalf("the upgrade plans %d actions: %+v; want at least backup, replace, verify", len(actions), actions)
	}
	kinds := map[string]bool{}
	for _, a := range actions {
		kinds[a.Kind] = true
	}
	for _, k := range []string{"backup-database", "replace-container", "verify"} {
		if !kinds[k] {
			t.Fatalf("the upgrade plans no %s: %+v", k, actions)
		}
	}
	for i, a := range actions {
		for _, event := range []string{"started", "done"} {
			step, event := i, event
			t.Run(fmt.Sprintf("%d-%s-%s", i, a.Kind, event), func(t *testing.T) {
				t.Parallel()
				d, rows := newFaultDeployment(t, "kill", 0)
				offset := d.journalSize()
				pid := d.killApplyWhen(fmt.Sprintf("step %d (%s) %s", step, a.Kind, event), func() bool {
					for _, r := range d.journalSince(offset) {
						if r.Step == step && r.Event == event {
							return true
						}
					}
					return false
				}, offset)
				d.expectConverged(pid, rows)
			})
		}
	}
	// Two moments inside the backup step: while the database is copied
	// out of the stopped container (raw-*.tmp), and while the verified
	// backup is written and checked (<id>.tmp, renamed into place last).
	for _, mid := range []struct{ name, what string }{{"mid-backup-copy", "raw-*.tmp"}, {"mid-backup-write", "<id>.tmp"}} {
		t.Run(mid.name, func(t *testing.T) {
			t.Parallel()
			// 48 MiB of ballast makes the backup take long enough to be
			// caught while its temporary directories exist.
			d, rows := newFaultDeployment(t, "killbak", 48)
			offset := d.journalSize()
			match := func() []string {
				var out []string
				for _, e := range d.tmpEntries() {
					// <id> starts with the date; probe-*.tmp, the check that
					// the directory takes files, is neither.
					raw := strings.HasPrefix(e, "raw-")
					if (mid.what == "raw-*.tmp" && raw) || (mid.what == "<id>.tmp" && e[0] >= '0' && e[0] <= '9') {
						out = append(out, e)
					}
				}
				return out
			}
			pid := d.killApplyWhen("a "+mid.what+" entry in the backup directory", func() bool {
				return len(match()) > 0
			}, offset)
			for _, r := range d.journalSince(offset) {
				if r.Event == "done" && r.Step == 0 {
					t.Fatalf("the backup was done when the kill landed; the test proves nothing")
				}
			}
			if tmp := match(); len(tmp) == 0 {
				t.Errorf("no %s entry left by the killed backup; the kill did not land mid-backup", mid.what)
			} else {
				t.Logf("the killed backup left %v", tmp)
			}
			d.expectConverged(pid, rows)
		})
	}
}

// TestConcurrentApplies starts two identical upgrades at once: one takes
// the lock and applies, the other fails fast naming the holder.
func TestConcurrentApplies(t *testing.T) {
	t.Parallel()
	d, rows := newFaultDeployment(t, "twice", 0)
	offset := d.journalSize()
	type outcome struct {
		pid      int
		res      result
		start    time.Time
		finished time.Time
	}
	var (
		outs [2]outcome
		wg   sync.WaitGroup
	)
	args := append([]string{"apply", "-f", d.file}, faultUpgrade...)
	release := make(chan struct{})
	for i := range outs {
		wg.Add(1)
		go func(o *outcome) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := d.command(ctx, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			<-release
			o.start = time.Now()
			if err := cmd.Start(); err != nil {
				o.res.code = -1
				o.res.stderr = err.Error()
				return
			}
			o.pid = cmd.Process.Pid
			_ = cmd.Wait()
			o.finished = time.Now()
			o.res = result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
		}(&outs[i])
	}
	close(release)
	wg.Wait()
	for _, o := range outs {
		t.Logf("pid %d: exit %d after %s\n%s", o.pid, o.res.code, o.finished.Sub(o.start).Round(time.Millisecond), o.res.output())
	}
	win, lose := outs[0], outs[1]
	if win.res.code != 0 {
		win, lose = lose, win
	}
	if win.res.code != 0 || lose.res.code != 1 {
		t.Fatalf("exit codes %d and %d, want one 0 (applied) and one 1 (locked out)", outs[0].res.code, outs[1].res.code)
	}
	expectOutput(t, win.res, "applied and verified")
	expectOutput(t, lose.res,
		fmt.Sprintf("another apply of %s is running (pid %d on ", d.name, win.pid),
		"wait for it to finish")
	if strings.Contains(lose.res.output(), "stale lock") || strings.Contains(win.res.output(), "stale lock") {
		t.Errorf("a live lock was reported as stale")
	}
	if !lose.finished.Before(win.finished) {
		t.Errorf("the locked-out apply ended %s, after the one holding the lock (%s): it waited instead of failing fast",
			lose.finished.Format(time.StampMilli), win.finished.Format(time.StampMilli))
	}
	// Exactly one apply ran: one begin and one clean end in the journal.
	var begins, ends int
	for _, r := range d.journalSince(offset) {
		switch r.Event {
		case "begin":
			begins++
		case "end":
			ends++
			if r.Detail != "" {
				t.Errorf("the apply ended with %q", r.Detail)
			}
		}
	}
	if begins != 1 || ends != 1 {
		t.Errorf("journal: %d begin and %d end records, want one apply", begins, ends)
	}
	d.expectRunning("v0.6.0-cpu", head060)
	expectRowsKept(t, rows, d.rows())
	if b := d.backupList(); len(b) != 1 || b[0].Revision != head051 || !b[0].Verified {
		t.Errorf("backups: %+v, want one verified at %s", b, head051)
	}
	d.expectLockReleased()
	expectCode(t, d.gsd("plan", "--detailed-exitcode", "--var", "version=v0.6.0"), 0)
	r := d.gsd("apply", faultUpgrade...)
	expectCode(t, r, 0)
	expectOutput(t, r, "No changes")
}

// TestBackupDirFaults: a backup directory that cannot take the backup
// (read-only, full) stops the upgrade before the deployment changes.
func TestBackupDirFaults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		mount string // tmpfs options
		cause string // in the error
	}{
		// The database with 2 MiB of ballast does not fit in 64 KiB.
		{"full", "size=64k,mode=0700", "no space left on device"},
		{"read-only", "size=1m,mode=0700,ro", "read-only file system"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, rows := newFaultDeployment(t, "bakdir", 2)
			if err := os.MkdirAll(d.backups, 0o700); err != nil {
				t.Fatal(err)
			}
			cause := tt.cause
			if err := d.mountBackups(tt.mount); err != nil {
				if tt.name != "read-only" || os.Geteuid() == 0 {
					skipOrFail(t, err)
				}
				// Not root: mode 0500 is enough to refuse writes.
				if err := os.Chmod(d.backups, 0o500); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.Chmod(d.backups, 0o700) })
				cause = "permission denied"
			}
			before := d.mustInspect()
			r := d.gsd("apply", faultUpgrade...)
			if r.code == 0 {
				t.Fatalf("apply succeeded with the backup directory %s; output:\n%s", tt.name, r.output())
			}
			expectOutput(t, r, d.backups, cause)
			if r.code != 1 {
				t.Errorf("exit code %d, want 1: nothing changed, nothing to roll back", r.code)
			}
			d.expectUnchanged(before)
			d.expectRunning("v0.5.1-cpu", head051)
			expectRowsKept(t, rows, d.rows())
			if n := d.listedBackups(); n != 0 {
				t.Errorf("backups lists %d backups after the failed one, want none", n)
			}
			if tmp := d.tmpEntries(); len(tmp) != 0 {
				t.Errorf("left in %s: %v", d.backups, tmp)
			}
			// Once the directory is fixed the same upgrade goes through.
			d.unmountBackups()
			_ = os.Chmod(d.backups, 0o700)
			expectCode(t, d.gsd("apply", faultUpgrade...), 0)
			d.expectRunning("v0.6.0-cpu", head060)
			expectRowsKept(t, rows, d.rows())
		})
	}
	t.Run("writable-by-others", func(t *testing.T) {
		t.Parallel()
		d, rows := newFaultDeployment(t, "bakmode", 0)
		root := filepath.Dir(d.backups)
		if err := os.MkdirAll(root, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(root, 0o777); err != nil {
			t.Fatal(err)
		}
		before := d.mustInspect()
		r := d.gsd("apply", faultUpgrade...)
		expectCode(t, r, 1)
		expectOutput(t, r, "backup directory "+root+" is writable by other users", "chmod go-w "+root)
		d.expectUnchanged(before)
		expectRowsKept(t, rows, d.rows())
		if tmp := d.tmpEntries(); len(tmp) != 0 {
			t.Errorf("left in %s: %v", d.backups, tmp)
		}
	})
}

// newFaultDeployment installs v0.5.1, seeds rows, and adds ballastMiB MiB
// of random blobs in a table of their own; it returns the row counts.
func newFaultDeployment(t testing.TB, prefix string, ballastMiB int) (*deployment, map[string]int64) {
	t.Helper()
	d := newDeployment(t, prefix, options{version: "v0.5.1"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	d.seed("--models", "3", "--instances", "2", "--users", "2")
	if ballastMiB > 0 {
		execIn(t, d.container, "gpustack", "emulator", "sql", "CREATE TABLE fault_ballast (b BLOB)")
		execIn(t, d.container, "gpustack", "emulator", "sql", fmt.Sprintf(
			"INSERT INTO fault_ballast SELECT randomblob(1048576) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < %d) SELECT i FROM n)", ballastMiB))
	}
	return d, d.rows()
}

// planActions returns the actions `plan --json args…` plans for the deployment.
func (d *deployment) planActions(args ...string) []planAction {
	d.t.Helper()
	r := d.gsd("plan", append([]string{"--json"}, args...)...)
	expectCode(d.t, r, 0)
	var p struct {
		Deployments []struct {
			Name    string       `json:"name"`
			Actions []planAction `json:"actions"`
		} `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		d.t.Fatalf("plan --json: %v\n%s", err, r.stdout)
	}
	if len(p.Deployments) != 1 || p.Deployments[0].Name != d.name {
		d.t.Fatalf("plan --json: want one deployment %s: %s", d.name, r.stdout)
	}
	return p.Deployments[0].Actions
}

func (d *deployment) journalPath() string { return filepath.Join(d.state, "journal", d.name+".jsonl") }

func (d *deployment) journalSize() int64 {
	st, err := os.Stat(d.journalPath())
	if err != nil {
		return 0
	}
	return st.Size()
}

// journalSince parses the journal from byte offset on; a torn last line
// (a crash mid-write, or a read racing a write) is skipped.
func (d *deployment) journalSince(offset int64) []journalRecord {
	f, err := os.Open(d.journalPath())
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return nil
	}
	var out []journalRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r journalRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// tmpEntries lists the *.tmp entries of the deployment's backup directory.
func (d *deployment) tmpEntries() []string {
	entries, err := os.ReadDir(d.backups)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			out = append(out, e.Name())
		}
	}
	return out
}

// killApplyWhen starts the upgrade and kills it (SIGKILL) as soon as when
// reports true. The journal and backup directories are watched with
// inotify: on every change the apply is frozen (SIGSTOP) while when is
// asked, then killed or let go on (SIGCONT); when is also asked every 2ms.
// The freeze lands after the change, usually within microseconds, but the
// apply may have gone a little further by then (a step that takes no time
// is often passed): the log shows where it really stopped.
// It returns the killed process's pid.
func (d *deployment) killApplyWhen(what string, when func() bool, offset int64) int {
	d.t.Helper()
	if err := os.MkdirAll(d.backups, 0o700); err != nil {
		d.t.Fatal(err)
	}
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		d.t.Fatalf("inotify: %v", err)
	}
	events := os.NewFile(uintptr(fd), "inotify")
	defer events.Close()
	for _, dir := range []string{filepath.Dir(d.journalPath()), d.backups} {
		if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_MODIFY|syscall.IN_MOVED_TO); err != nil {
			d.t.Fatalf("inotify %s: %v", dir, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := d.command(ctx, append([]string{"apply", "-f", d.file}, faultUpgrade...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	buf := make([]byte, 64<<10)
	for {
		_ = events.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
		_, err := events.Read(buf)
		changed := err == nil
		if changed {
			_ = cmd.Process.Signal(syscall.SIGSTOP)
		}
		if when() {
			break
		}
		if changed {
			_ = cmd.Process.Signal(syscall.SIGCONT)
		}
		select {
		case err := <-done:
			d.t.Fatalf("the apply ended (%v) before %s:\n%s", err, what, out.String())
		default:
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		d.t.Fatal(err)
	}
	<-done
	var trace []string
	ended := false
	for _, r := range d.journalSince(offset) {
		trace = append(trace, fmt.Sprintf("%s %d %s", r.Event, r.Step, r.Action))
		ended = ended || r.Event == "end"
	}
	d.t.Logf("killed the apply at %s; journal of the killed run: %s; its output:\n%s", what, strings.Join(trace, " | "), out.String())
	if ended {
		d.t.Fatalf("the apply ended before it was killed; the test proves nothing")
	}
	return cmd.Process.Pid
}

// expectConverged re-runs the upgrade after a kill of pid and checks that
// it converges: v0.6.0 verified with every row, the stale lock reported and
// cleared, no helper container, no temporary backup, nothing more to do.
func (d *deployment) expectConverged(pid int, rows map[string]int64) {
	d.t.Helper()
	offset := d.journalSize()
	r := d.gsd("apply", faultUpgrade...)
	expectCode(d.t, r, 0)
	expectOutput(d.t, r, fmt.Sprintf("cleared a stale lock left by pid %d on ", pid), "the previous apply was interrupted")
	d.expectRunning("v0.6.0-cpu", head060)
	expectRowsKept(d.t, rows, d.rows())
	d.expectLockReleased()
	if recs := d.journalSince(offset); len(recs) == 0 || recs[len(recs)-1].Event != "end" || recs[len(recs)-1].Detail != "" {
		d.t.Errorf("the re-run's journal does not end cleanly: %+v", recs)
	}
	helpers, err := docker.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", labelDeployment+"="+d.name), filters.Arg("label", labelRole+"=helper"))})
	if err != nil {
		d.t.Fatal(err)
	}
	for _, h := range helpers {
		d.t.Errorf("helper container %s (%s) left over", strings.Join(h.Names, ","), h.State)
	}
	if tmp := d.tmpEntries(); len(tmp) != 0 {
		d.t.Errorf("left in %s: %v", d.backups, tmp)
	}
	verified := false
	for _, b := range d.backupList() {
		verified = verified || (b.Verified && b.Revision == head051)
	}
	if !verified {
		d.t.Errorf("no verified backup at %s: %+v", head051, d.backupList())
	}
	expectCode(d.t, d.gsd("plan", "--detailed-exitcode", "--var", "version=v0.6.0"), 0)
}

// expectLockReleased checks that the lock file holds no owner.
func (d *deployment) expectLockReleased() {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.state, "locks", d.name+".lock"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		d.t.Fatal(err)
	}
	if len(b) != 0 {
		d.t.Errorf("the lock file still names a holder: %s", b)
	}
}

// listedBackups counts the deployment's backups in `backups --json`.
func (d *deployment) listedBackups() int {
	d.t.Helper()
	r := d.gsd("backups", "--json")
	expectCode(d.t, r, 0)
	var all map[string][]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil {
		d.t.Fatalf("backups --json: %v\n%s", err, r.stdout)
	}
	return len(all[d.name])
}

// mountBackups mounts a tmpfs with opts on the deployment's backup
// directory; t.Cleanup unmounts it.
func (d *deployment) mountBackups(opts string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("mounting a tmpfs needs root (euid %d)", os.Geteuid())
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", d.backups).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mount -t tmpfs -o %s tmpfs %s: %v: %s", opts, d.backups, err, bytes.TrimSpace(out))
	}
	d.t.Cleanup(d.unmountBackups)
	return nil
}

// unmountBackups unmounts the tmpfs of mountBackups, if it is mounted.
func (d *deployment) unmountBackups() {
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if !bytes.Contains(mounts, []byte(" "+d.backups+" ")) {
		return
	}
	if out, err := exec.Command("umount", d.backups).CombinedOutput(); err != nil {
		d.t.Errorf("umount %s: %v: %s", d.backups, err, bytes.TrimSpace(out))
	}
}

// skipOrFail skips a test whose fault cannot be set up here; as root with
// CI=true, where mounting a tmpfs is expected to work, it fails instead.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
		t.Fatalf("cannot set up the fault: %v", err)
	}
	t.Skipf("cannot set up the fault: %v", err)
}

// TestFaultDockerdRestart restarts the Docker daemon while an upgrade waits
// for the new container to verify. The shared daemon the other tests use
// must not restart, so this test runs a daemon of its own (its own socket,
// data root, exec root and pid file; no bridge, no iptables) inside a
// network namespace of its own: dockerd --bridge=none deletes any "docker0"
// it finds, which on the host is the shared daemon's bridge. The two
// images are copied in through the image save/load API; the deployment
// uses the (private) host network, and every gpustack-deploy run enters
// that namespace. After the daemon is back, the apply that lived through
// it must have ended, and a re-run must converge.
func TestFaultDockerdRestart(t *testing.T) {
	t.Parallel()
	pd := startPrivateDaemon(t, dockerdBinary(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	loadImages(t, []string{repository + ":v0.5.1-cpu", repository + ":v0.6.0-cpu"}, []*privateDaemon{pd})

	d := newDeployment(t, "dockerd", options{})
	d.env = append(d.env, "DOCKER_HOST=unix://"+pd.sock)
	hcl := fmt.Sprintf(`variable "version" { default = "v0.5.1" }
variable "delay" { default = "" }
gpustack %q {
  version        = var.version
  variant        = "cpu"
  container_name = %q
  network_mode   = "host" # the private daemon has no bridge
  container_port = %d # passed to GPUStack as --port
  args           = ["--disable-worker"]
  env            = { GPUSTACK_EMULATOR_STARTUP_DELAY = var.delay }
  volume "data"  { name = %q }
  volume "cache" { name = %q }
  backup { dir = "./backups" }
  policy { pull = "never" }
  health { timeout = "30s" }
}
`, d.name, d.container, d.port, d.data, d.cache)
	if err := os.WriteFile(d.file, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	expectCode(t, pd.run(d, "apply", "-f", d.file, "--auto-approve"), 0)
	rows := decodeRows(t, execWith(t, pd.cli, d.container, "gpustack", "emulator", "seed", "--models", "3", "--instances", "2", "--users", "2"))

	// The upgrade's new container takes 5s to answer; the daemon restarts
	// while apply waits for it.
	offset := d.journalSize()
	upgrade := []string{"apply", "-f", d.file, "--auto-approve", "--var", "version=v0.6.0", "--var", "delay=5s"}
	actx, acancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer acancel()
	cmd := pd.command(d, actx, upgrade...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		verifying := false
		for _, r := range d.journalSince(offset) {
			verifying = verifying || (r.Event == "started" && r.Action == "verify")
		}
		if verifying {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the apply ended (%v) before it verified:\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the apply did not reach verify in 2m:\n%s", out.String())
		}
	}
	restarted := time.Now()
	pd.stop(t)
	pd.start(t)
	t.Logf("the private daemon restarted in %s", time.Since(restarted).Round(time.Millisecond))
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the apply still runs 3m after the daemon came back:\n%s", out.String())
	}
	code := cmd.ProcessState.ExitCode()
	t.Logf("the apply that lived through the restart: exit %d\n%s", code, out.String())
	// It had replaced the container: 3 if it went back, 4 if it could not
	// (the daemon was away); never 0, nor 1 ("failed, nothing changed").
	if code != 3 && code != 4 {
		t.Errorf("the apply that lived through the restart exited %d, want 3 (rolled back) or 4 (could not go back)", code)
	}
	var trace []string
	ended := false
	for _, r := range d.journalSince(offset) {
		trace = append(trace, fmt.Sprintf("%s %d %s %s", r.Event, r.Step, r.Action, r.Detail))
		ended = ended || r.Event == "end"
	}
	t.Logf("its journal: %s", strings.Join(trace, " | "))
	if !ended {
		t.Errorf("the apply that lived through the restart did not end its journal")
	}

	expectCode(t, pd.run(d, upgrade...), 0)
	ct, err := pd.cli.ContainerInspect(ctx, d.container)
	if err != nil {
		t.Fatalf("inspect %s: %v", d.container, err)
	}
	if !ct.State.Running || ct.Config.Image != repository+":v0.6.0-cpu" {
		t.Errorf("container %s: %s, %s; want v0.6.0-cpu running", d.container, ct.Config.Image, ct.State.Status)
	}
	if _, err := pd.cli.ContainerInspect(ctx, d.container+previousSuffix); err == nil {
		t.Errorf("container %s%s is left over", d.container, previousSuffix)
	}
	r := pd.run(d, "status", "-f", d.file, "--json", "--var", "version=v0.6.0")
	expectCode(t, r, 0)
	var st []statusRow
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st) != 1 {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if st[0].Version != "v0.6.0-cpu" || st[0].Revision != head060 || st[0].State != "running" || st[0].Health != "ok" {
		t.Errorf("status: %+v, want v0.6.0-cpu at %s, running, health ok", st[0], head060)
	}
	expectRowsKept(t, rows, decodeRows(t, execWith(t, pd.cli, d.container, "gpustack", "emulator", "rows")))
	helpers, err := pd.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", labelDeployment+"="+d.name), filters.Arg("label", labelRole+"=helper"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(helpers) != 0 {
		t.Errorf("%d helper containers left over", len(helpers))
	}
	if tmp := d.tmpEntries(); len(tmp) != 0 {
		t.Errorf("left in %s: %v", d.backups, tmp)
	}
	d.expectLockReleased()
	expectCode(t, pd.run(d, "plan", "-f", d.file, "--detailed-exitcode", "--var", "version=v0.6.0", "--var", "delay=5s"), 0)
}
