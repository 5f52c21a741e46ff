package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/schema"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// FailureKind classifies why a new container was not accepted.
type FailureKind int

// Values are persisted in journals: never renumber.
const (
	FailMigration       FailureKind = 1 // a migration error in the log
	FailExited          FailureKind = 2 // the process exited before answering
	FailHealthTimeout   FailureKind = 3 // no healthy answer within health.timeout
	FailVersionMismatch FailureKind = 4 // /version is not the target release
	FailRevision        FailureKind = 5 // the stamped revision is not the target head
	FailProbe           FailureKind = 6 // the schema probe of the stamped revision fails
	FailAction          FailureKind = 7 // an engine call failed
	FailCleanup         FailureKind = 8 // a step after verification failed; the new version runs
)

func (k FailureKind) String() string {
	switch k {
	case FailMigration:
		return "migration failed"
	case FailExited:
		return "container exited"
	case FailHealthTimeout:
		return "health timeout"
	case FailVersionMismatch:
		return "version mismatch"
	case FailRevision:
		return "revision mismatch"
	case FailProbe:
		return "schema probe failed"
	case FailCleanup:
		return "clean-up failed"
	default:
		return "action failed"
	}
}

// Failure is why a new container was not accepted.
type Failure struct {
	Kind    FailureKind
	Message string
	// LogLine is the log line that gave the failure away, if any.
	LogLine string
	// LogTail is the end of the container's output.
	LogTail []string
	// LogFile is where the full log was saved.
	LogFile string
}

func (f *Failure) Error() string {
	if f.LogLine != "" {
		return fmt.Sprintf("%s: %s\n  log: %s", f.Kind, f.Message, f.LogLine)
	}
	return fmt.Sprintf("%s: %s", f.Kind, f.Message)
}

// signatures are log fragments that mean GPUStack will not come up. Before
// v2.1.1 the process exits 0 after them, so they are the only reliable sign.
var signatures = []string{
	"Database migration failed",
	"Error running server",
	"Can't locate revision",
	"no such column",
	"duplicate column name",
	"Failed to migrate",
	"unrecognized arguments",
}

// MatchSignature returns the failure signature a log line carries, if any.
func MatchSignature(line string) (string, bool) {
	for _, s := range signatures {
		if strings.Contains(line, s) {
			return s, true
		}
	}
	if strings.Contains(line, " - CRITICAL - ") {
		return "CRITICAL", true
	}
	return "", false
}

// findCurrent sets currentID, when this run did not create or start the
// container, to the deployment's container.
func (r *run) findCurrent(ctx context.Context) error {
	if r.currentID != "" {
		return nil
	}
	ct, err := r.eng.InspectContainer(ctx, r.d.ContainerName)
	if err != nil {
		return err
	}
	if ct == nil {
		return &Failure{Kind: FailExited, Message: "the container is gone"}
	}
	r.currentID = ct.ID
	return nil
}

// verify waits until the new container answers /healthz, then checks its
// version, the revision it stamped and the schema probe.
func (r *run) verify(ctx context.Context) error {
	if err := r.findCurrent(ctx); err != nil {
		return err
	}
	if err := r.waitHealthy(ctx, r.currentID); err != nil {
		return err
	}
	if err := r.checkVersion(ctx); err != nil {
		return err
	}
	return r.checkDatabase(ctx)
}

// waitHealthy follows the log and the exit status while polling /healthz.
func (r *run) waitHealthy(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, r.d.Health.Timeout)
	defer cancel()
	// Only what the current run writes counts: a container started again
	// (the previous one on a rollback) keeps the log of all its past runs,
	// where an old CRITICAL line would fail a healthy start.
	ct, err := r.eng.InspectContainer(ctx, id)
	if err != nil {
		return err
	}
	var since time.Time
	if ct != nil {
		since = ct.StartedAt
	}
	lines, err := r.eng.FollowLogs(ctx, id, since)
	if err != nil {
		return err
	}
	exited, waitErr := r.eng.WaitExit(ctx, id)
	tick := time.NewTicker(r.x.poll())
	defer tick.Stop()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			if sig, bad := MatchSignature(line); bad {
				return &Failure{Kind: FailMigration, Message: "GPUStack logged \"" + sig + "\"", LogLine: line}
			}
		case code := <-exited:
			// Give the log a moment to deliver the line that explains the exit.
			if f := r.drainForSignature(lines); f != nil {
				return f
			}
			return &Failure{Kind: FailExited, Message: "the container exited with code " + strconv.FormatInt(code, 10) + " before /healthz answered"}
		case err := <-waitErr:
			if ctx.Err() == nil {
				return err
			}
		case <-tick.C:
			if observe.Probe(ctx, r.d.Health.Address, r.d.HealthPort(), 2*time.Second) == "ok" {
				return nil
			}
		case <-ctx.Done():
			if parent := context.Cause(ctx); parent != nil && ctx.Err() != context.DeadlineExceeded {
				return parent
			}
			return &Failure{Kind: FailHealthTimeout, Message: "no healthy answer from http://" + r.d.Health.Address + ":" + strconv.Itoa(r.d.HealthPort()) + "/healthz within " + r.d.Health.Timeout.String()}
		}
	}
}

func (r *run) drainForSignature(lines <-chan string) *Failure {
	if lines == nil {
		return nil
	}
	deadline := time.After(2 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if sig, bad := MatchSignature(line); bad {
				return &Failure{Kind: FailMigration, Message: "GPUStack logged \"" + sig + "\"", LogLine: line}
			}
		case <-deadline:
			return nil
		}
	}
}

func (x *Executor) poll() time.Duration {
	if x.PollInterval > 0 {
		return x.PollInterval
	}
	return 100 * time.Millisecond
}

// checkVersion asks GET /version: images have reported another version than
// their tag (#2798), so the tag alone proves nothing.
func (r *run) checkVersion(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := "http://" + r.d.Health.Address + ":" + strconv.Itoa(r.d.HealthPort()) + "/version"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &Failure{Kind: FailVersionMismatch, Message: "GET /version: " + err.Error()}
	}
	defer resp.Body.Close()
	var v struct {
		Version   string `json:"version"`
		GitCommit string `json:"git_commit"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return &Failure{Kind: FailVersionMismatch, Message: "GET /version: " + err.Error()}
	}
	want := r.pd.Target.Release
	if want == "" {
		r.x.printf("%s: /version reports %s (%s)", r.d.Name, v.Version, v.GitCommit)
		return nil
	}
	if strings.TrimPrefix(v.Version, "v") != strings.TrimPrefix(want, "v") {
		return &Failure{Kind: FailVersionMismatch, Message: fmt.Sprintf("/version reports %q, want %q: the image is not the release its tag names", v.Version, want)}
	}
	return nil
}

// checkDatabase reads the database the new container migrated and compares
// it with the target release: the stamp must be its head and the probe of
// that head must pass.
func (r *run) checkDatabase(ctx context.Context) error {
	if r.d.ExternalDatabase() {
		return r.checkExternal(ctx)
	}
	if done, err := r.checkPostgres(ctx); done {
		return err
	}
	tmp, err := os.MkdirTemp("", "gpustack-deploy-verify-")
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer os.RemoveAll(tmp)
	db := observe.ReadDatabaseFrom(ctx, r.eng, r.currentID, spec.DataDir, tmp, schema.Options{CountRows: r.restored != nil})
	switch db.Status {
	case observe.DBRead:
	case observe.DBUnsupported:
		r.res.Notes = append(r.res.Notes, "the database was not inspected: "+db.Reason)
		return nil
	default:
		return &Failure{Kind: FailRevision, Message: "the database could not be read after start: " + db.Reason}
	}
	head := r.pd.Target.Revision
	if head == "" {
		r.res.Notes = append(r.res.Notes, "the development image stamped revision "+db.Revision)
		return nil
	}
	if db.Revision != head {
		return &Failure{Kind: FailRevision, Message: fmt.Sprintf("the database is stamped %q, want the release head %q", db.Revision, head)}
	}
	rev, _ := r.x.Catalog.Revision(head)
	if missing := rev.Probe().Check(db.Tables); len(missing) > 0 {
		return &Failure{Kind: FailProbe, Message: fmt.Sprintf("stamped %s but missing %v", head, missing)}
	}
	if r.restored != nil && r.restored.Revision == head {
		return rowsKept(r.restored.Rows, db.Rows)
	}
	return nil
}

// rowsKept checks that a restored database holds at least the rows its
// backup recorded (GPUStack may add rows of its own at start).
func rowsKept(want, got map[string]int64) error {
	for _, table := range sortedTables(want) {
		if got[table] < want[table] {
			return &Failure{Kind: FailProbe, Message: fmt.Sprintf("table %s holds %d rows after the restore, the backup had %d", table, got[table], want[table])}
		}
	}
	return nil
}

func sortedTables(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
