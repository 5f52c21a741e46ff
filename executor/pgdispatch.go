package executor

import (
	"context"
	"fmt"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// backupWith takes the backup of an ActionBackupDatabase whose method is
// not sqlite (pg-files, pg-dump, volume) and makes it the rollback target.
func (r *run) backupWith(ctx context.Context, a plan.Action, method plan.BackupMethod) error {
	m := backup.Manifest{
		Deployment: r.d.Name, Host: r.d.Host, Created: r.x.now(),
		Reason:  "before " + r.pd.Target.Version + " (" + a.Reason.String() + ")",
		Version: r.pd.Current.Version, Image: r.pd.Current.Image, Revision: a.From,
	}
	out, err := r.takeBackup(ctx, method, m)
	if err != nil {
		return err
	}
	r.backup = out
	r.res.Backup = out.ID
	r.x.printf("%s: backup %s verified (%s, %d rows, revision %s)", r.d.Name, out.ID, out.GetMethod(), out.TotalRows(), out.Revision)
	return nil
}

func (r *run) takeBackup(ctx context.Context, method plan.BackupMethod, m backup.Manifest) (*backup.Manifest, error) {
	switch method {
	case plan.MethodPGFiles, plan.MethodVolume:
		return r.backupPG(ctx, method, m)
	case plan.MethodPGDump:
		return r.backupDump(ctx, m)
	case plan.MethodExternalDump:
		return r.backupExternal(ctx, m)
	default:
		return nil, fmt.Errorf("backup method %s is not supported by gpustack-deploy yet", method)
	}
}

// safetyCopyFiles keeps the data as it is before a restore overwrites it,
// as an unverified backup: the whole volume when the action says so, PGDATA
// when the volume holds an embedded PostgreSQL. It reports false when
// neither applies (a SQLite safety copy).
func (r *run) safetyCopyFiles(ctx context.Context, a plan.Action) (bool, error) {
	method := plan.MethodPGFiles
	if a.Method == plan.MethodVolume || r.restoresVolume() {
		method = plan.MethodVolume
	}
	pgDir, err := r.findPGDir(ctx)
	if err != nil {
		return true, err
	}
	if pgDir == "" && method != plan.MethodVolume {
		return false, nil
	}
	pe, err := r.pgEngine()
	if err != nil {
		return true, err
	}
	id, dataDir, cleanup, err := r.dataReader(ctx)
	if err != nil {
		return true, err
	}
	defer cleanup()
	engine := "sqlite"
	if pgDir != "" {
		engine = "embedded-postgresql"
	}
	m, err := r.storeFiles(ctx, pe, id, dataDir, method, backup.Manifest{
		Deployment: r.d.Name, Host: r.d.Host, Created: r.x.now(),
		Reason:  "safety copy: " + a.Reason.String(),
		Version: r.pd.Current.Version, Image: r.pd.Current.Image, ImageID: imageIDOf(ctx, r.eng, id),
		Engine: engine, Revision: a.From, PGDir: pgDir,
	}, true)
	if err != nil {
		return true, fmt.Errorf("safety copy: %w", err)
	}
	r.res.SafetyCopy = m.ID
	r.x.printf("%s: safety copy %s kept (%s, unverified, as found)", r.d.Name, m.ID, method)
	return true, nil
}

// restoresVolume reports whether the plan restores a volume backup: that
// empties the whole volume, so the safety copy before it keeps it whole.
func (r *run) restoresVolume() bool {
	a, ok := r.pd.Action(plan.ActionRestoreDatabase)
	if !ok {
		return false
	}
	if a.Method != "" {
		return a.Method == plan.MethodVolume
	}
	store, err := backup.Open(r.d.Backup.Dir, r.d.Name)
	if err != nil {
		return false
	}
	m, err := store.Get(a.Subject)
	return err == nil && m.GetMethod() == plan.MethodVolume
}

// checkPostgres is checkDatabase for a v2 data volume: it reads the
// embedded PostgreSQL through psql in the new, running container and
// demands the release head, a passing probe, and at least the rows of the
// backup it started from. It reports false when the volume holds no
// PostgreSQL.
func (r *run) checkPostgres(ctx context.Context) (bool, error) {
	pgDir, _, err := observe.FindPGDir(ctx, r.eng, r.currentID, spec.DataDir)
	if err != nil || pgDir == "" {
		return false, nil
	}
	pe, err := r.pgEngine()
	if err != nil {
		return true, err
	}
	db, err := r.readPG(ctx, pe, r.currentID, spec.DataDir, pgDir)
	if err != nil {
		return true, &Failure{Kind: FailRevision, Message: "the database could not be read after start: " + db.Reason}
	}
	head := r.pd.Target.Revision
	if head == "" {
		r.res.Notes = append(r.res.Notes, "the development image stamped revision "+db.Revision)
		return true, nil
	}
	if db.Revision != head {
		return true, &Failure{Kind: FailRevision, Message: fmt.Sprintf("the database is stamped %q, want the release head %q", db.Revision, head)}
	}
	rev, _ := r.x.Catalog.Revision(head)
	if missing := rev.Probe().Check(db.Tables); len(missing) > 0 {
		return true, &Failure{Kind: FailProbe, Message: fmt.Sprintf("stamped %s but missing %v", head, missing)}
	}
	switch {
	case r.restored != nil && r.restored.Revision == head:
		return true, rowsKept(r.restored.Rows, db.Rows)
	case r.backup != nil && r.backup.Engine == "embedded-postgresql" && !r.migrationDeletesRows():
		return true, rowsKept(present(r.backup.Rows, db.Tables), db.Rows)
	}
	return true, nil
}

// migrationDeletesRows reports whether a revision the plan crosses is
// known to delete rows, so that fewer rows after it prove nothing.
func (r *run) migrationDeletesRows() bool {
	for _, a := range r.pd.Actions {
		for _, s := range a.Steps {
			if rev, ok := r.x.Catalog.Revision(s.Revision); ok && rev.DeletesRows != "" {
				return true
			}
		}
	}
	return false
}

// present keeps the counts of tables that still exist: a table a migration
// drops is the probe's business.
func present(rows map[string]int64, tables map[string][]string) map[string]int64 {
	out := map[string]int64{}
	for t, n := range rows {
		if _, ok := tables[t]; ok {
			out[t] = n
		}
	}
	return out
}
