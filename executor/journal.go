package executor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// Record is one line of a deployment's journal.
type Record struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"` // begin, started, done, failed, end
	Step   int       `json:"step,omitempty"`
	Action string    `json:"action,omitempty"`
	// Detail is the error of a failed step or the backup id of a done one.
	Detail string `json:"detail,omitempty"`
	// Target is the version the apply moves to (begin records).
	Target string `json:"target,omitempty"`
}

// Journal appends the steps of an apply to
// <state>/journal/<deployment>.jsonl, one synced line per event, so that a
// crash leaves a trace of where it stopped.
type Journal struct {
	f   *os.File
	now func() time.Time
}

// Interrupted describes an apply that began but never ended.
type Interrupted struct {
	// Where says what it was doing when it stopped.
	Where string
	// Backup is the id of the backup it took before changing anything,
	// the database to go back to if its change cannot be completed.
	Backup string
}

// OpenJournal opens a deployment's journal. When the last apply recorded
// in it began but never ended, interrupted says where it stopped.
func OpenJournal(stateDir, deployment string, now func() time.Time) (*Journal, *Interrupted, error) {
	dir := filepath.Join(stateDir, "journal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	path := filepath.Join(dir, deployment+".jsonl")
	interrupted, err := lastUnfinished(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	return &Journal{f: f, now: now}, interrupted, nil
}

func lastUnfinished(path string) (*Interrupted, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	var (
		begin, last *Record
		backupID    string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue // a torn last line from a crash
		}
		switch r.Event {
		case "begin":
			rec := r
			begin, last, backupID = &rec, &rec, ""
		case "end":
			begin, last, backupID = nil, nil, ""
		default:
			rec := r
			last = &rec
			if r.Event == "done" && r.Action == backupAction && r.Detail != "" {
				backupID = r.Detail
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if begin == nil {
		return nil, nil
	}
	where := fmt.Sprintf("apply to %s began %s", begin.Target, begin.Time.Format(time.RFC3339))
	if last != begin {
		where += fmt.Sprintf("; last step: %s %s", last.Action, last.Event)
	}
	return &Interrupted{Where: where, Backup: backupID}, nil
}

// backupAction is how the journal names the backup step.
var backupAction = plan.ActionBackupDatabase.String()

func (j *Journal) write(r Record) {
	r.Time = j.now().UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	// The journal is a trace, not a source of truth: a failed write must
	// not stop an apply that is otherwise fine.
	if _, err := j.f.Write(append(b, '\n')); err == nil {
		_ = j.f.Sync()
	}
}

// Begin records the start of an apply.
func (j *Journal) Begin(pd plan.Deployment) {
	j.write(Record{Event: "begin", Target: pd.Target.Version})
}

// Step records an action's progress.
func (j *Journal) Step(i int, a plan.Action, event, detail string) {
	j.write(Record{Event: event, Step: i, Action: a.Kind.String(), Detail: detail})
}

// End records the end of an apply, successful or not.
func (j *Journal) End(err error) {
	r := Record{Event: "end"}
	if err != nil {
		r.Detail = err.Error()
	}
	j.write(r)
}

// Close closes the journal file.
func (j *Journal) Close() error { return j.f.Close() }

// Lock is a held per-deployment apply lock.
type Lock struct {
	f *os.File
	// Stale describes a lock file left by a process that died holding it.
	Stale string
}

type lockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
}

// AcquireLock takes <state>/locks/<deployment>.lock with flock. The kernel
// drops the lock when its holder dies, so a lock file whose holder is gone
// is reported as stale and taken over.
func AcquireLock(stateDir, deployment string, now time.Time) (*Lock, error) {
	dir := filepath.Join(stateDir, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	path := filepath.Join(dir, deployment+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	held := readLockInfo(f)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			// The holder writes who it is right after taking the lock: a
			// read that came first finds the file empty, so read again.
			for i := 0; i < 20 && held.PID == 0; i++ {
				time.Sleep(10 * time.Millisecond)
				held = readLockInfo(f)
			}
			if held.PID == 0 {
				return nil, fmt.Errorf("another apply of %s is running (it has not recorded its pid yet); wait for it to finish", deployment)
			}
			return nil, fmt.Errorf("another apply of %s is running (pid %d on %s since %s); wait for it to finish",
				deployment, held.PID, held.Host, held.Started.Format(time.RFC3339))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l := &Lock{f: f}
	if held.PID != 0 {
		l.Stale = fmt.Sprintf("cleared a stale lock left by pid %d on %s (started %s), which ended without releasing it",
			held.PID, held.Host, held.Started.Format(time.RFC3339))
	}
	host, _ := os.Hostname()
	info, _ := json.Marshal(lockInfo{PID: os.Getpid(), Host: host, Started: now.UTC()})
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(info, 0)
		_ = f.Sync()
	}
	return l, nil
}

// readLockInfo reads the holder's record from the start of the lock file;
// an empty or partly written file gives the zero value.
func readLockInfo(f *os.File) lockInfo {
	var held lockInfo
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	_ = json.Unmarshal(b[:n], &held)
	return held
}

// Release empties the lock file and drops the lock.
func (l *Lock) Release() {
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

// Settle closes the record of an interrupted apply whose work turned out to
// be done (killed during its last step, say): for each deployment the plan
// leaves unchanged, a stale lock is reported and cleared and an unfinished
// journal is ended. Left open, the journal would make a later apply take
// that old run's backup for its own rollback target. A lock held by a
// running apply is left alone.
func (x *Executor) Settle(p *plan.Plan) {
	for _, pd := range p.Deployments {
		if pd.HasChanges() {
			continue
		}
		st, err := os.Stat(filepath.Join(x.StateDir, "locks", pd.Name+".lock"))
		if err != nil || st.Size() == 0 {
			continue // released: the last apply ended its journal first
		}
		lock, err := AcquireLock(x.StateDir, pd.Name, x.now())
		if err != nil {
			continue
		}
		if lock.Stale != "" {
			x.printf("%s: %s", pd.Name, lock.Stale)
		}
		if j, interrupted, err := OpenJournal(x.StateDir, pd.Name, x.now); err == nil {
			if interrupted != nil {
				x.printf("%s: the previous apply was interrupted (%s); nothing was left to do", pd.Name, interrupted.Where)
				j.End(nil)
			}
			j.Close()
		}
		lock.Release()
	}
}
