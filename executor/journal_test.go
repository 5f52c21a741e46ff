package executor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

func TestAcquireLock(t *testing.T) {
	dir := t.TempDir()
	first, err := AcquireLock(dir, "prod", now)
	if err != nil {
		t.Fatalf("AcquireLock: %v", err)
	}
	if first.Stale != "" {
		t.Errorf("a fresh lock reports %q", first.Stale)
	}
	// flock belongs to the open file description: a second open in the
	// same process conflicts like another process would.
	_, err = AcquireLock(dir, "prod", now)
	if err == nil || !strings.Contains(err.Error(), "another apply of prod is running") || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second AcquireLock error = %v, want another apply naming our pid", err)
	}
	other, err := AcquireLock(dir, "staging", now)
	if err != nil {
		t.Fatalf("a lock on another deployment: %v", err)
	}
	other.Release()
	first.Release()
	again, err := AcquireLock(dir, "prod", now)
	if err != nil {
		t.Fatalf("AcquireLock after Release: %v", err)
	}
	if again.Stale != "" {
		t.Errorf("a released lock is reported stale: %q", again.Stale)
	}
	again.Release()
}

func TestAcquireLockStale(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "locks"), 0o700); err != nil {
		t.Fatal(err)
	}
	// What a process killed while applying leaves: its record, no flock.
	left := `{"pid":4242,"host":"build-7","started":"2026-11-27T22:00:00Z"}`
	if err := os.WriteFile(filepath.Join(dir, "locks", "prod.lock"), []byte(left), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := AcquireLock(dir, "prod", now)
	if err != nil {
		t.Fatalf("AcquireLock over a stale lock: %v", err)
	}
	defer l.Release()
	for _, want := range []string{"stale lock", "pid 4242", "build-7", "2026-11-27T22:00:00Z"} {
		if !strings.Contains(l.Stale, want) {
			t.Errorf("Stale = %q, want it to mention %q", l.Stale, want)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "locks", "prod.lock"))
	if err != nil || !strings.Contains(string(b), `"pid":`+strconv.Itoa(os.Getpid())) || strings.Contains(string(b), "4242") {
		t.Errorf("lock file holds %q (%v), want only our record", b, err)
	}
}

func TestOpenJournal(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string // "" when nothing was interrupted
		// wantBackup is the backup the interrupted apply took.
		wantBackup string
	}{
		{name: "no journal"},
		{
			name: "finished apply",
			lines: []string{
				`{"time":"2026-11-28T05:00:00Z","event":"begin","target":"v0.5.1-cpu"}`,
				`{"time":"2026-11-28T05:00:01Z","event":"started","action":"replace container"}`,
				`{"time":"2026-11-28T05:00:09Z","event":"done","action":"replace container"}`,
				`{"time":"2026-11-28T05:00:10Z","event":"end"}`,
			},
		},
		{
			name: "begin without end",
			lines: []string{
				`{"time":"2026-11-28T05:00:00Z","event":"begin","target":"v0.4.1-cpu"}`,
				`{"time":"2026-11-28T05:00:10Z","event":"end"}`,
				`{"time":"2026-11-28T06:00:00Z","event":"begin","target":"v0.5.1-cpu"}`,
				`{"time":"2026-11-28T06:00:01Z","event":"started","step":1,"action":"replace container"}`,
			},
			want: "apply to v0.5.1-cpu began 2026-11-28T06:00:00Z; last step: replace container started",
		},
		{
			name: "only begin",
			lines: []string{
				`{"time":"2026-11-28T06:00:00Z","event":"begin","target":"v0.5.1-cpu"}`,
			},
			want: "apply to v0.5.1-cpu began 2026-11-28T06:00:00Z",
		},
		{
			name: "torn last line",
			lines: []string{
				`{"time":"2026-11-28T06:00:00Z","event":"begin","target":"v0.5.1-cpu"}`,
				`{"time":"2026-11-28T06:00:01Z","event":"done","step":0,"action":"back up database","detail":"20261128T060001.000Z-004c73a5c09e"}`,
				`{"time":"2026-11-28T06:00:02Z","event":"sta`,
			},
			want:       "apply to v0.5.1-cpu began 2026-11-28T06:00:00Z; last step: back up database done",
			wantBackup: "20261128T060001.000Z-004c73a5c09e",
		},
		{
			name: "torn line after the end",
			lines: []string{
				`{"time":"2026-11-28T06:00:00Z","event":"begin","target":"v0.5.1-cpu"}`,
				`{"time":"2026-11-28T06:00:10Z","event":"end"}`,
				`{"time":"2026-11-28T07:00:00Z","ev`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.lines != nil {
				if err := os.MkdirAll(filepath.Join(dir, "journal"), 0o700); err != nil {
					t.Fatal(err)
				}
				// A torn line has no newline after it.
				data := strings.Join(tt.lines, "\n")
				if !strings.Contains(tt.name, "torn") {
					data += "\n"
				}
				if err := os.WriteFile(filepath.Join(dir, "journal", "prod.jsonl"), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			j, got, err := OpenJournal(dir, "prod", func() time.Time { return now })
			if err != nil {
				t.Fatalf("OpenJournal: %v", err)
			}
			defer j.Close()
			if where(got) != tt.want {
				t.Errorf("interrupted = %q\nwant          %q", where(got), tt.want)
			}
			if got != nil && got.Backup != tt.wantBackup {
				t.Errorf("interrupted apply's backup = %q, want %q", got.Backup, tt.wantBackup)
			}
		})
	}
}

// TestJournalRecordsAnApply writes an apply's records and reads them back:
// an apply that ended leaves nothing to report, one that did not is named.
func TestJournalRecordsAnApply(t *testing.T) {
	dir := t.TempDir()
	clock := func() time.Time { return now }
	pd := plan.Deployment{Name: "prod", Target: plan.State{Version: "v0.5.1-cpu"}}
	a := plan.Action{Kind: plan.ActionReplaceContainer}

	j, _, err := OpenJournal(dir, "prod", clock)
	if err != nil {
		t.Fatal(err)
	}
	j.Begin(pd)
	j.Step(1, a, "started", "")
	j.Close()
	j, got, err := OpenJournal(dir, "prod", clock)
	if err != nil {
		t.Fatal(err)
	}
	if want := "apply to v0.5.1-cpu began 2026-11-28T06:17:02Z; last step: replace container started"; where(got) != want {
		t.Errorf("interrupted = %q, want %q", where(got), want)
	}
	j.Begin(pd)
	j.Step(1, a, "done", "")
	j.End(nil)
	j.Close()
	j, got, err = OpenJournal(dir, "prod", clock)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if got != nil {
		t.Errorf("after an apply that ended, interrupted = %+v", got)
	}
	st, err := os.Stat(filepath.Join(dir, "journal", "prod.jsonl"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("journal file: %v, %v; want mode 0600", st, err)
	}
}

// TestApplyReportsAnInterruptedApply runs an apply after one that died
// midway: the note says so, and the journal ends this time.
func TestApplyReportsAnInterruptedApply(t *testing.T) {
	u := newUpgrade(t, nil)
	if err := os.MkdirAll(filepath.Join(u.x.StateDir, "journal"), 0o700); err != nil {
		t.Fatal(err)
	}
	torn := `{"time":"2026-11-28T06:00:00Z","event":"begin","target":"v0.5.1-cpu"}` + "\n" + `{"time":"2026-11-28T06:00:01Z","event":"started","step":0,"action":"back up database"}` + "\n"
	if err := os.WriteFile(filepath.Join(u.x.StateDir, "journal", "prod.jsonl"), []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}
	u.f.behaviors[newRef] = behavior{healthy: true, version: "v0.5.1", onStart: migrates(t)}
	results, err := u.apply(t)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(results[0].Notes) == 0 || !strings.Contains(results[0].Notes[0], "the previous apply was interrupted (apply to v0.5.1-cpu began") {
		t.Errorf("notes = %q, want the interrupted apply reported", results[0].Notes)
	}
	j, got, err := OpenJournal(u.x.StateDir, "prod", u.x.Now)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if got != nil {
		t.Errorf("after a finished apply the journal reports %+v", got)
	}
}

// TestLockHeldBeforeItsHolderWroteItsPid: the holder takes the flock, then
// writes who it is; a second apply that reads the file in between must
// still name the holder, not "pid 0".
func TestLockHeldBeforeItsHolderWroteItsPid(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "locks"), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "locks", "prod.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(30 * time.Millisecond)
		_, _ = f.WriteAt([]byte(`{"pid":4242,"host":"gpu1","started":"2026-11-28T10:00:00Z"}`), 0)
	}()
	_, err = AcquireLock(dir, "prod", time.Now())
	if err == nil || !strings.Contains(err.Error(), "pid 4242 on gpu1") {
		t.Fatalf("got %v, want the holder named once it wrote its pid", err)
	}
}
