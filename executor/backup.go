package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/schema"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// Helpers is implemented by engines that can create helper containers to
// reach a volume no container mounts.
type Helpers interface {
	CreateHelper(ctx context.Context, deployment string, mounts ...engine.HelperMount) (string, error)
}

// backupDatabase stops the container for a consistent copy and writes a
// verified backup. A backup that fails verification stops the apply before
// anything else changes (the container is started again by the rollback).
func (r *run) backupDatabase(ctx context.Context, a plan.Action) error {
	if method, err := r.backupMethod(ctx, a.Method); err != nil {
		return err
	} else if method != plan.MethodSQLite {
		return r.backupWith(ctx, a, method)
	}
	// The backup directory is checked before anything is stopped: a backup
	// that cannot be written fails while the deployment runs untouched.
	store, err := backup.Open(r.d.Backup.Dir, r.d.Name)
	if err != nil {
		return err
	}
	if err := r.checkBackupDir(ctx, store); err != nil {
		return err
	}
	id, dataDir, cleanup, err := r.dataReader(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	// Read before the backup is written: manifest.json is final once
	// TakeBackup returns.
	imageID := imageIDOf(ctx, r.eng, id)
	m, err := TakeBackup(ctx, r.eng, store, id, dataDir, backup.Manifest{
		Deployment: r.d.Name,
		Host:       r.d.Host,
		Created:    r.x.now(),
		Reason:     "before " + r.pd.Target.Version + " (" + a.Reason.String() + ")",
		Version:    r.pd.Current.Version,
		Image:      r.pd.Current.Image,
		ImageID:    imageID,
		Revision:   a.From,
	}, r.x.Catalog)
	if err != nil {
		return err
	}
	r.backup = m
	r.res.Backup = m.ID
	r.x.printf("%s: backup %s verified (%d rows, revision %s)", r.d.Name, m.ID, m.TotalRows(), m.Revision)
	return nil
}

// checkBackupDir makes sure the store's directory takes files and has
// room for the raw copy of the database and its self-contained form, which
// exist side by side while a backup is written.
func (r *run) checkBackupDir(ctx context.Context, store *backup.Store) error {
	probe, err := os.CreateTemp(store.Dir, "probe-*.tmp")
	if err != nil {
		return fmt.Errorf("backup directory %s cannot be written: %w", store.Dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	var size int64
	for _, name := range []string{r.d.ContainerName, r.d.ContainerName + observe.PreviousSuffix} {
		ct, err := r.eng.InspectContainer(ctx, name)
		if err != nil || ct == nil || !r.ours(ct) || !mountsData(ct, r.d.Data.Source()) {
			continue
		}
		for _, f := range []string{backup.DatabaseName, backup.DatabaseName + "-wal"} {
			if ok, n, err := r.eng.Stat(ctx, ct.ID, spec.DataDir+"/"+f); err == nil && ok {
				size += n
			}
		}
		break
	}
	var st syscall.Statfs_t
	if size == 0 || syscall.Statfs(store.Dir, &st) != nil {
		return nil
	}
	if free := int64(st.Bavail) * int64(st.Bsize); free < 2*size {
		return fmt.Errorf("backup directory %s has %d bytes free, a backup of the %d-byte database needs about %d: %w",
			store.Dir, free, size, 2*size, syscall.ENOSPC)
	}
	return nil
}

// dataReader returns a stopped container that mounts the data volume: the
// deployment's own container (stopped here if it runs), the one kept aside
// by an interrupted replace, or a new helper.
func (r *run) dataReader(ctx context.Context) (string, string, func(), error) {
	for _, name := range []string{r.d.ContainerName, r.d.ContainerName + observe.PreviousSuffix} {
		ct, err := r.eng.InspectContainer(ctx, name)
		if err != nil {
			return "", "", nil, err
		}
		if ct == nil || !r.ours(ct) || !mountsData(ct, r.d.Data.Source()) {
			continue
		}
		if ct.Running() {
			r.x.printf("%s: stopping %s for a consistent backup", r.d.Name, ct.Name)
			if err := r.eng.StopContainer(ctx, ct.ID, r.x.grace()); err != nil {
				return "", "", nil, err
			}
			r.stoppedID = ct.ID
		}
		return ct.ID, spec.DataDir, func() {}, nil
	}
	h, ok := r.eng.(Helpers)
	if !ok {
		return "", "", nil, fmt.Errorf("no container mounts volume %s and the engine cannot create helpers", r.d.Data.Source())
	}
	id, err := h.CreateHelper(ctx, r.d.Name, engine.HelperMount{Volume: r.d.Data.Name, HostPath: r.d.Data.HostPath, Target: "/data"})
	if err != nil {
		return "", "", nil, err
	}
	return id, "/data", func() { _ = r.eng.RemoveContainer(context.WithoutCancel(ctx), id) }, nil
}

// imageIDOf is the image of the container a backup is read through; a
// helper container's image says nothing, so it gives "".
func imageIDOf(ctx context.Context, eng Engine, id string) string {
	if ct, _ := eng.InspectContainer(ctx, id); ct != nil && ct.Labels[spec.LabelRole] != spec.RoleHelper {
		return ct.ImageID
	}
	return ""
}

func mountsData(ct *engine.Container, source string) bool {
	for _, m := range ct.Mounts {
		src := m.Name
		if m.Type == "bind" {
			src = m.Source
		}
		if m.Destination == spec.DataDir && src == source {
			return true
		}
	}
	return false
}

// TakeBackup copies the SQLite files and secrets out of dataDir inside the
// stopped container id and stores a verified backup described by m.
func TakeBackup(ctx context.Context, eng observe.FileReader, store *backup.Store, id, dataDir string, m backup.Manifest, cat *catalog.Catalog) (*backup.Manifest, error) {
	raw, err := CopyRaw(ctx, eng, store, id, dataDir)
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", m.Deployment, err)
	}
	defer os.RemoveAll(raw)
	return StoreRaw(store, raw, m, cat)
}

// CopyRaw copies the SQLite files and secrets out of dataDir inside the
// container id into a new directory of the store, and returns it; the
// caller removes it. This is the only part of a backup that needs the
// container stopped.
func CopyRaw(ctx context.Context, eng observe.FileReader, store *backup.Store, id, dataDir string) (string, error) {
	raw, err := os.MkdirTemp(store.Dir, "raw-*.tmp")
	if err != nil {
		return "", err
	}
	if _, err := observe.CopySQLite(ctx, eng, id, dataDir, raw); err != nil {
		os.RemoveAll(raw)
		return "", fmt.Errorf("copy the database out: %w", err)
	}
	if err := copySecrets(ctx, eng, id, dataDir, raw); err != nil {
		os.RemoveAll(raw)
		return "", err
	}
	return raw, nil
}

// StoreRaw turns files copied by CopyRaw into a verified backup.
func StoreRaw(store *backup.Store, raw string, m backup.Manifest, cat *catalog.Catalog) (*backup.Manifest, error) {
	m.Engine = string(catalog.EngineSQLite)
	out, err := store.Create(raw, m, probeCheck(cat, m.Revision))
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", m.Deployment, err)
	}
	return out, nil
}

// probeCheck accepts a backup whose tables satisfy the probe of revision.
func probeCheck(cat *catalog.Catalog, revision string) backup.Check {
	return func(snap *schema.Snapshot) error {
		rev, ok := cat.Revision(revision)
		if !ok {
			return fmt.Errorf("revision %s is not on the release chain", revision)
		}
		if missing := rev.Probe().Check(snap.Tables); len(missing) > 0 {
			return fmt.Errorf("schema probe of %s fails: missing %v", revision, missing)
		}
		return nil
	}
}

// copySecrets copies the SecretFiles present in dataDir into dst.
func copySecrets(ctx context.Context, eng observe.FileReader, id, dataDir, dst string) error {
	for _, name := range backup.SecretFiles {
		if _, err := eng.CopyFile(ctx, id, dataDir+"/"+name, filepath.Join(dst, name)); err != nil && !engine.IsNotFound(err) {
			return fmt.Errorf("copy %s: %w", name, err)
		}
	}
	return nil
}
