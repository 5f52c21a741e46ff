package executor

import (
	"context"
	"fmt"
	"os"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// safetyCopy stops the container and keeps the database files as they are,
// whatever state they are in, before a restore overwrites them.
func (r *run) safetyCopy(ctx context.Context, a plan.Action) error {
	if done, err := r.safetyCopyFiles(ctx, a); done {
		return err
	}
	id, dataDir, cleanup, err := r.dataReader(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	store, err := backup.Open(r.d.Backup.Dir, r.d.Name)
	if err != nil {
		return err
	}
	raw, err := CopyRaw(ctx, r.eng, store, id, dataDir)
	if err != nil {
		return fmt.Errorf("safety copy: %w", err)
	}
	defer os.RemoveAll(raw)
	m, err := store.CreateRaw(raw, backup.Manifest{
		Deployment: r.d.Name, Host: r.d.Host, Created: r.x.now(),
		Reason:  "safety copy: " + a.Reason.String(),
		Version: r.pd.Current.Version, Image: r.pd.Current.Image,
		Engine: "sqlite", Revision: a.From,
	})
	if err != nil {
		return err
	}
	r.res.SafetyCopy = m.ID
	r.x.printf("%s: safety copy %s kept (unverified, as found)", r.d.Name, m.ID)
	return nil
}

// restoreDatabase writes backup a.Subject into the data volume through a
// stopped container that mounts it. The backup is verified against its
// manifest first; a damaged one is refused before anything is written.
func (r *run) restoreDatabase(ctx context.Context, a plan.Action) error {
	store, err := backup.Open(r.d.Backup.Dir, r.d.Name)
	if err != nil {
		return err
	}
	m, err := store.Get(a.Subject)
	if err != nil {
		return err
	}
	id, dataDir, cleanup, err := r.dataReader(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := r.RestoreInto(ctx, m, id, dataDir); err != nil {
		return err
	}
	r.restored = &m
	r.x.printf("%s: backup %s written into volume %s", r.d.Name, m.ID, r.d.Data.Source())
	return nil
}

// BackupNow takes an on-demand verified backup of deployment d under its
// apply lock. Unless online is set, a running container is stopped for the
// copy and started again afterwards, whatever happens; online copies the
// files from the running server and relies on verification to reject a
// torn copy.
func (x *Executor) BackupNow(ctx context.Context, d config.Deployment, current plan.State, online bool) (*backup.Manifest, error) {
	return x.BackupNowWith(ctx, d, current, BackupOptions{Online: online})
}

// BackupOptions shape an on-demand backup.
type BackupOptions struct {
	// Online copies SQLite files from the running server (sqlite only).
	Online bool
	// Method is the backup method; empty picks the one the data volume
	// calls for (pg-files for v2's embedded PostgreSQL, sqlite otherwise).
	Method plan.BackupMethod
}

// BackupNowWith is BackupNow with a choice of method. A pg-dump is taken
// from the running server; pg-files and volume stop GPUStack for the copy
// and start it again afterwards, whatever happens.
func (x *Executor) BackupNowWith(ctx context.Context, d config.Deployment, current plan.State, o BackupOptions) (*backup.Manifest, error) {
	online := o.Online
	eng, ok := x.Engines[d.Host]
	if !ok {
		return nil, fmt.Errorf("no connection to docker host %q", d.Host)
	}
	lock, err := AcquireLock(x.StateDir, d.Name, x.now())
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if lock.Stale != "" {
		x.printf("%s: %s", d.Name, lock.Stale)
	}
	r := &run{x: x, eng: eng, d: d, pd: plan.Deployment{Name: d.Name, Host: d.Host, Current: current}, res: &Result{Deployment: d.Name}}
	method, err := r.backupMethod(ctx, o.Method)
	if err != nil {
		return nil, err
	}
	if method != plan.MethodSQLite {
		if online && method != plan.MethodPGDump {
			return nil, fmt.Errorf("--online copies SQLite files; a %s backup needs GPUStack stopped (use --method pg-dump for a backup of the running server)", method)
		}
		defer r.restart(ctx)
		return r.takeBackup(ctx, method, backup.Manifest{
			Deployment: d.Name, Host: d.Host, Created: x.now(), Reason: "on demand",
			Version: current.Version, Image: current.Image, Revision: current.Revision,
		})
	}
	var (
		id, dataDir string
		cleanup     = func() {}
	)
	if online {
		ct, err := eng.InspectContainer(ctx, d.ContainerName)
		if err != nil {
			return nil, err
		}
		if ct == nil || !mountsData(ct, d.Data.Source()) {
			return nil, fmt.Errorf("--online needs the running container %s", d.ContainerName)
		}
		id, dataDir = ct.ID, spec.DataDir
	} else {
		id, dataDir, cleanup, err = r.dataReader(ctx)
		if err != nil {
			return nil, err
		}
	}
	defer cleanup()
	store, err := backup.Open(d.Backup.Dir, d.Name)
	if err != nil {
		r.restart(ctx)
		return nil, err
	}
	imageID := imageIDOf(ctx, eng, id)
	raw, err := CopyRaw(ctx, eng, store, id, dataDir)
	// Only the copy needs GPUStack stopped; folding, checking and hashing
	// run while it serves again.
	r.restart(ctx)
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", d.Name, err)
	}
	defer os.RemoveAll(raw)
	return StoreRaw(store, raw, backup.Manifest{
		Deployment: d.Name, Host: d.Host, Created: x.now(), Reason: "on demand",
		Version: current.Version, Image: current.Image, ImageID: imageID, Revision: current.Revision,
	}, x.Catalog)
}

// restart starts the container stopped for a copy again, if any.
func (r *run) restart(ctx context.Context) {
	if r.stoppedID == "" {
		return
	}
	if err := r.eng.StartContainer(context.WithoutCancel(ctx), r.stoppedID); err != nil {
		r.x.printf("%s: could not start %s again: %v", r.d.Name, r.d.ContainerName, err)
		return
	}
	r.x.printf("%s: %s started again", r.d.Name, r.d.ContainerName)
	r.stoppedID = ""
}
