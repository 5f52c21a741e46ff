package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// fail handles an action that did not succeed. When the deployment was
// already changed it goes back: the failed container is stopped and its log
// saved, the pre-upgrade backup is restored, and the previous container is
// started again and checked. The returned error describes both.
func (r *run) fail(ctx context.Context, a plan.Action, cause error) error {
	var f *Failure
	if !errors.As(cause, &f) {
		f = &Failure{Kind: FailAction, Message: cause.Error()}
	}
	r.res.Failure = f
	if r.res.Verified {
		// The new container passed verification and serves: a step after
		// it (removing the kept container or the old cache copy) must not
		// take it down. What is left over is reported, not undone.
		f.Kind = FailCleanup
		r.res.Notes = append(r.res.Notes, "the deployment runs verified; only a clean-up step failed: "+cause.Error())
		return cause
	}
	// Going back must finish even when the apply was interrupted.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.d.Health.Timeout+2*time.Minute)
	defer cancel()
	if r.currentID != "" {
		r.collectLogs(ctx, f)
	}
	if r.currentID == "" && r.previousID == "" && r.stoppedID == "" {
		return cause
	}
	back, err := r.rollback(ctx)
	r.res.RolledBack, r.res.Unrestored = back, !back
	if err != nil {
		return fmt.Errorf("%w\nrollback failed: %v", cause, err)
	}
	return cause
}

// collectLogs stops the failed container and saves its whole log next to
// the deployment's backups.
func (r *run) collectLogs(ctx context.Context, f *Failure) {
	if err := r.eng.StopContainer(ctx, r.currentID, r.x.grace()); err != nil {
		r.res.Notes = append(r.res.Notes, "could not stop the failed container: "+err.Error())
	}
	out, err := r.eng.Logs(ctx, r.currentID, "all")
	if err != nil {
		r.res.Notes = append(r.res.Notes, "could not read the failed container's log: "+err.Error())
		return
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	f.LogTail = lines
	dir := filepath.Join(r.x.StateDir, "logs", r.d.Name)
	if r.d.IsWorker() {
		// A worker has no backup directory: its logs go to the state directory.
		err = os.MkdirAll(dir, 0o700)
	} else {
		var store *backup.Store
		if store, err = backup.Open(r.d.Backup.Dir, r.d.Name); err == nil {
			dir = store.Dir
		}
	}
	if err != nil {
		r.res.Notes = append(r.res.Notes, "could not save the failed container's log: "+err.Error())
		return
	}
	name := fmt.Sprintf("failed-%s-%s.log", r.x.now().UTC().Format("20060102T150405Z"), r.pd.Target.Version)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		r.res.Notes = append(r.res.Notes, "could not save the failed container's log: "+err.Error())
		return
	}
	f.LogFile = path
}

// rollback puts the deployment back as it was before this apply. It
// reports whether it did: false means the deployment is left stopped for
// the operator, with notes saying why.
func (r *run) rollback(ctx context.Context) (bool, error) {
	if !r.started {
		// Nothing new ran: only a container stopped for the backup to restart.
		if r.stoppedID == "" {
			return true, nil
		}
		return r.bringBack(ctx, r.stoppedID, false)
	}
	if r.volumeReplaced {
		note := "the data volume was replaced: there is no earlier container to go back to"
		if r.res.Backup != "" || r.res.SafetyCopy != "" {
			note += "; the old database is kept as backup " + r.res.Backup + r.res.SafetyCopy + " (gpustack-deploy restore)"
		}
		r.res.Notes = append(r.res.Notes, note)
		return false, nil
	}
	if r.d.IsWorker() {
		// A worker has no database: its previous container, on the same
		// data volume, is all there is to go back to.
		if r.previousID == "" || r.previousID == r.currentID {
			r.res.Notes = append(r.res.Notes, "the worker had no earlier container; "+r.d.ContainerName+" is kept stopped for inspection")
			return false, nil
		}
		if err := r.eng.RemoveContainer(ctx, r.currentID); err != nil {
			return false, err
		}
		return r.bringBack(ctx, r.previousID, true)
	}
	// A container this run started may have migrated the database.
	if r.backup == nil && r.inheritedBackup != "" && r.restored == nil {
		if m, err := r.loadBackup(r.inheritedBackup); err == nil {
			r.backup = m
			r.res.Notes = append(r.res.Notes, "going back to backup "+m.ID+", taken by the interrupted apply before its change")
		} else {
			r.res.Notes = append(r.res.Notes, "the interrupted apply's backup cannot be used: "+err.Error())
		}
	}
	if r.backup == nil {
		// Without a backup the database may hold a half-applied
		// migration; starting the old image on it could make it worse.
		note := "no backup was taken by this apply (backup.before_upgrade = false)"
		if r.res.SafetyCopy != "" {
			note = "the restored version did not verify; the database as it was before the restore is kept in safety copy " + r.res.SafetyCopy
		}
		r.res.Notes = append(r.res.Notes, note+": the failed container is kept stopped for inspection and the previous one is not started")
		return false, nil
	}
	if err := r.restore(ctx, r.currentID); err != nil {
		return false, err
	}
	r.x.printf("%s: database restored from backup %s", r.d.Name, r.backup.ID)
	if r.previousID == "" || r.previousID == r.currentID {
		// The failed container is the only one: it is kept stopped on the
		// restored database rather than started to fail again.
		r.res.Notes = append(r.res.Notes, "the database was restored; no earlier container exists to start, so "+r.d.ContainerName+" is kept stopped")
		return false, nil
	}
	if err := r.eng.RemoveContainer(ctx, r.currentID); err != nil {
		return false, err
	}
	return r.bringBack(ctx, r.previousID, true)
}

// bringBack starts container id again (renaming it back from its kept-aside
// name first when aside is set) and waits until it is healthy.
func (r *run) bringBack(ctx context.Context, id string, aside bool) (bool, error) {
	if aside {
		if err := r.eng.RenameContainer(ctx, id, r.d.ContainerName); err != nil {
			return false, err
		}
	}
	if err := r.eng.StartContainer(ctx, id); err != nil {
		return false, err
	}
	if err := r.waitHealthy(ctx, id); err != nil {
		return false, fmt.Errorf("the previous container %s did not come back healthy: %w", r.d.ContainerName, err)
	}
	r.x.printf("%s: previous container %s (%s) is running again", r.d.Name, r.d.ContainerName, r.pd.Current.Version)
	return true, nil
}

// restore writes the pre-upgrade backup into the data volume through the
// stopped container id, which mounts it, by the backup's method.
func (r *run) restore(ctx context.Context, id string) error {
	return r.RestoreInto(ctx, *r.backup, id, spec.DataDir)
}

func (r *run) loadBackup(id string) (*backup.Manifest, error) {
	store, err := backup.Open(r.d.Backup.Dir, r.d.Name)
	if err != nil {
		return nil, err
	}
	m, err := store.Get(id)
	if err != nil {
		return nil, err
	}
	if !m.Verified {
		return nil, fmt.Errorf("backup %s was never verified", id)
	}
	return &m, nil
}
