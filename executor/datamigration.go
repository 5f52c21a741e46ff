package executor

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/schema"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// ollamaTables hold rows whose source can be OLLAMA_LIBRARY: v2's revision
// 2aed534bd7b2 deletes those rows after the copy.
var ollamaTables = []string{"models", "model_files", "model_instances"}

// MigrationCompletedLine is what v2's migration logs when the copy succeeded.
const MigrationCompletedLine = "Migration completed successfully."

// MigrationDoneFile marks, in the data directory, that the v0.x → v2 copy
// has run; v2 never runs it again once the file exists (#3575).
const MigrationDoneFile = "run/state_migration_done"

// expectedRows is what a v0.x database must still hold once v2 copied it:
// per table, the rows before the jump, and the least a table may hold
// afterwards (rows v2 itself deletes are subtracted).
type expectedRows struct {
	before, least map[string]int64
}

// migrateData moves a v0.x deployment onto v2: the data directory is made
// readable for v2's non-root services, the v0.x container is kept aside,
// and the target release starts once with the data-migration switch. The
// copy is proven by the done-file, the log line and the rows of every
// migrated table; any failure rolls back through the whole-volume backup
// taken just before. The next action recreates the container without the
// switch.
func (r *run) migrateData(ctx context.Context, a plan.Action) error {
	want, err := r.rowsBeforeJump(ctx)
	if err != nil {
		return fmt.Errorf("read the v0.x database before the migration: %w", err)
	}
	if err := r.openDataDir(ctx); err != nil {
		return err
	}
	r.migrating = true
	err = r.replaceContainer(ctx)
	r.migrating = false
	if err != nil {
		return err
	}
	r.x.printf("%s: %s started with %s; waiting for the copy and the upgrade to %s", r.d.Name, r.pd.Target.Version, spec.EnvDataMigration, a.To)
	if err := r.waitHealthy(ctx, r.currentID); err != nil {
		return err
	}
	return r.checkMigration(ctx, want)
}

// openDataDir gives the data directory the a+rx mode v2 needs: PostgreSQL
// and s6 run as non-root users (docs/migration.md).
func (r *run) openDataDir(ctx context.Context) error {
	img, err := r.toolImage(ctx)
	if err != nil {
		return err
	}
	mount := engine.HelperMount{Volume: r.d.Data.Name, HostPath: r.d.Data.HostPath, Target: "/data"}
	if _, err := r.tool(ctx, img, "chmod a+rx /data", nil, []engine.HelperMount{mount}); err != nil {
		return fmt.Errorf("make the data directory readable for v2: %w", err)
	}
	return nil
}

// rowsBeforeJump counts the rows of the migrated tables in the v0.x
// database, through the stopped v0.x container or a helper.
func (r *run) rowsBeforeJump(ctx context.Context) (expectedRows, error) {
	id, dataDir, cleanup, err := r.dataReader(ctx)
	if err != nil {
		return expectedRows{}, err
	}
	defer cleanup()
	tmp, err := os.MkdirTemp("", "gpustack-deploy-jump-")
	if err != nil {
		return expectedRows{}, err
	}
	defer os.RemoveAll(tmp)
	if _, err := observe.CopySQLite(ctx, r.eng, id, dataDir, tmp); err != nil {
		return expectedRows{}, err
	}
	return countForJump(filepath.Join(tmp, "database.db"))
}

// countForJump reads the SQLite copy at path.
func countForJump(path string) (expectedRows, error) {
	snap, err := schema.Inspect(path, schema.Options{CountRows: true})
	if err != nil {
		return expectedRows{}, err
	}
	want := expectedRows{before: map[string]int64{}, least: map[string]int64{}}
	for _, t := range catalog.MigratedTables() {
		if _, ok := snap.Tables[t]; !ok {
			continue
		}
		want.before[t] = snap.Rows[t]
		want.least[t] = snap.Rows[t]
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return want, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	for _, t := range ollamaTables {
		if !hasColumn(snap.Tables[t], "source") {
			continue
		}
		var n int64
		if err := db.QueryRow(`SELECT count(*) FROM "` + t + `" WHERE source = 'OLLAMA_LIBRARY'`).Scan(&n); err != nil {
			return want, fmt.Errorf("count Ollama rows of %s: %w", t, err)
		}
		want.least[t] -= n
		if n > 0 {
			// Links to deleted model files go with them.
			delete(want.least, "modelinstancemodelfilelink")
		}
	}
	return want, nil
}

func hasColumn(cols []string, name string) bool {
	for _, c := range cols {
		if c == name {
			return true
		}
	}
	return false
}

// checkMigration proves the copy once v2 answers: the done-file exists,
// the migration logged its success line, and every migrated table holds
// at least the rows it had (users live on as principals from v2.2.0).
func (r *run) checkMigration(ctx context.Context, want expectedRows) error {
	done, _, err := r.eng.Stat(ctx, r.currentID, spec.DataDir+"/"+MigrationDoneFile)
	if err != nil {
		return err
	}
	if !done {
		return &Failure{Kind: FailMigration, Message: "v2 answers but " + MigrationDoneFile + " is missing: the data was not migrated"}
	}
	logs, err := r.eng.Logs(ctx, r.currentID, "all")
	if err != nil {
		return err
	}
	if !strings.Contains(string(logs), MigrationCompletedLine) {
		return &Failure{Kind: FailMigration, Message: "v2 never logged \"" + MigrationCompletedLine + "\""}
	}
	pe, err := r.pgEngine()
	if err != nil {
		return err
	}
	pgDir, _, err := observe.FindPGDir(ctx, r.eng, r.currentID, spec.DataDir)
	if err != nil {
		return err
	}
	if pgDir == "" {
		return &Failure{Kind: FailMigration, Message: "v2 answers but its data volume holds no PostgreSQL data directory"}
	}
	db, err := r.readPG(ctx, pe, r.currentID, spec.DataDir, pgDir)
	if err != nil {
		return &Failure{Kind: FailRevision, Message: "the migrated database could not be read: " + err.Error()}
	}
	if err := migratedRowsKept(want, db.Rows); err != nil {
		return err
	}
	r.x.printf("%s: data migrated to PostgreSQL (%s)", r.d.Name, describeRows(want.before))
	return nil
}

// migratedRowsKept compares the rows after the migration with want.
func migratedRowsKept(want expectedRows, got map[string]int64) error {
	for _, t := range sortedTables(want.least) {
		have, ok := got[t]
		if t == "users" && !ok {
			have, ok = got["principals"]
		}
		if !ok {
			return &Failure{Kind: FailProbe, Message: fmt.Sprintf("table %s is missing after the migration", t)}
		}
		if have < want.least[t] {
			return &Failure{Kind: FailProbe, Message: fmt.Sprintf("table %s holds %d rows after the migration, the v0.x database had %d", t, have, want.before[t])}
		}
	}
	return nil
}

func describeRows(rows map[string]int64) string {
	parts := make([]string, 0, len(rows))
	var total int64
	for _, t := range sortedTables(rows) {
		total += rows[t]
		if rows[t] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", t, rows[t]))
		}
	}
	if len(parts) == 0 {
		return "no rows to copy"
	}
	return fmt.Sprintf("%d rows: %s", total, strings.Join(parts, ", "))
}
