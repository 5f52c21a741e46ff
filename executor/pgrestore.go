package executor

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/schema"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

var schemaRows = schema.Options{CountRows: true}

// restoreSuffix names the copy of PGDATA a pg-files restore writes next
// to the live one before it swaps them: nothing is removed until the whole
// archive is in the volume.
const restoreSuffix = ".gsd-restore"

// RestoreInto writes backup m into the data volume through container id,
// which mounts it at dataDir and is stopped: the one entry point of every
// restore (ActionRestoreDatabase, the rollback of a failed upgrade, and
// the v0.x → v2 jump's way back with a MethodVolume backup). It dispatches
// on the backup's method.
func (r *run) RestoreInto(ctx context.Context, m backup.Manifest, id, dataDir string) error {
	store, err := backup.Open(r.d.Backup.Dir, r.d.Name)
	if err != nil {
		return err
	}
	switch m.GetMethod() {
	case plan.MethodSQLite:
		rc, err := store.Archive(m)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := r.eng.CopyIn(ctx, id, dataDir, rc); err != nil {
			return fmt.Errorf("restore backup %s: %w", m.ID, err)
		}
		return nil
	case plan.MethodPGFiles:
		return r.restorePGFiles(ctx, store, m, id, dataDir)
	case plan.MethodPGDump:
		return r.restorePGDump(ctx, store, m, id, dataDir)
	case plan.MethodVolume:
		return r.restoreVolume(ctx, store, m, id, dataDir)
	case plan.MethodExternalDump:
		return r.restoreExternal(ctx, store, m)
	default:
		return fmt.Errorf("backup %s: method %s cannot be restored by gpustack-deploy", m.ID, m.GetMethod())
	}
}

// volumeTool runs script as root in a one-off container that mounts the
// data volume read-write at spec.DataDir.
func (r *run) volumeTool(ctx context.Context, script string, args ...string) error {
	image, err := r.toolImage(ctx)
	if err != nil {
		return err
	}
	_, err = r.tool(ctx, image, script, args, []engine.HelperMount{{Volume: r.d.Data.Name, HostPath: r.d.Data.HostPath, Target: spec.DataDir}})
	return err
}

// prepareScript clears a stale restore copy and creates PGDATA's parent.
const prepareScript = `set -eu
rm -rf "$1` + restoreSuffix + `"
mkdir -p "$(dirname "$1")"
`

// swapScript puts the restored copy in place of the live PGDATA.
const swapScript = `set -eu
test -f "$1` + restoreSuffix + `/PG_VERSION"
rm -rf "$1"
mv "$1` + restoreSuffix + `" "$1"
`

// restorePGFiles writes a pg-files backup back: the archive goes next to
// the live PGDATA with its owners (9999) and modes (0700) kept, and only
// then replaces it; the secrets follow.
func (r *run) restorePGFiles(ctx context.Context, store *backup.Store, m backup.Manifest, id, dataDir string) error {
	pe, err := r.pgEngine()
	if err != nil {
		return err
	}
	pgDir := m.PGDir
	if pgDir == "" {
		pgDir = observe.PGDirs[0]
	}
	live := spec.DataDir + "/" + pgDir
	if err := r.volumeTool(ctx, prepareScript, live); err != nil {
		return fmt.Errorf("restore backup %s: prepare %s: %w", m.ID, pgDir, err)
	}
	rc, err := store.PGFilesArchive(m, path.Base(pgDir)+restoreSuffix)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := pe.CopyInOwned(ctx, id, dataDir+"/"+path.Dir(pgDir), rc); err != nil {
		return fmt.Errorf("restore backup %s: %w", m.ID, err)
	}
	if err := r.volumeTool(ctx, swapScript, live); err != nil {
		return fmt.Errorf("restore backup %s: swap %s in: %w", m.ID, pgDir, err)
	}
	return r.restoreSecrets(ctx, store, m, id, dataDir)
}

func (r *run) restoreSecrets(ctx context.Context, store *backup.Store, m backup.Manifest, id, dataDir string) error {
	sec := store.SecretsArchive(m)
	defer sec.Close()
	if err := r.eng.CopyIn(ctx, id, dataDir, sec); err != nil {
		return fmt.Errorf("restore backup %s: secrets: %w", m.ID, err)
	}
	return nil
}

// pgLoadScript starts PostgreSQL on the volume's PGDATA ($1) in a one-off
// container, drops and recreates database gpustack, loads the dump with
// pg_restore, and shuts down cleanly whatever happened.
const pgLoadScript = `set -u
W=/tmp/gsd-restore
PGD="$1"
mkdir -p "$W"
PGV=$(cat "$PGD/PG_VERSION")
` + observe.StandaloneScript + `pg_up
psql -X -q -h "$W" -p 5432 -U root -d postgres -v ON_ERROR_STOP=1 \
	-c 'DROP DATABASE IF EXISTS gpustack' -c 'CREATE DATABASE gpustack OWNER root'
code=$?
if [ "$code" -eq 0 ]; then
	pg_restore -h "$W" -p 5432 -U root -d gpustack --exit-on-error "$2"
	code=$?
fi
pg_down || code=4
exit "$code"
`

// restorePGDump loads a pg-dump backup into the embedded PostgreSQL of the
// volume, through a one-off container of the backup's image running as
// PGDATA's owner.
func (r *run) restorePGDump(ctx context.Context, store *backup.Store, m backup.Manifest, id, dataDir string) error {
	pe, err := r.pgEngine()
	if err != nil {
		return err
	}
	pgDir, _, err := observe.FindPGDir(ctx, r.eng, id, dataDir)
	if err != nil {
		return err
	}
	if pgDir == "" {
		return fmt.Errorf("restore backup %s: volume %s holds no PostgreSQL cluster to load a dump into; restore a pg-files backup instead", m.ID, r.d.Data.Source())
	}
	uid, gid, err := pe.Owner(ctx, id, dataDir+"/"+pgDir+"/PG_VERSION")
	if err != nil {
		return err
	}
	f, err := store.Open(m, backup.PGDumpName)
	if err != nil {
		return err
	}
	defer f.Close()
	image, err := r.toolImage(ctx)
	if err != nil {
		return err
	}
	for _, ref := range []string{m.ImageID, m.Image} {
		if img, err := r.eng.InspectImage(ctx, ref); ref != "" && err == nil && img != nil {
			image = img.ID
			break
		}
	}
	res, err := r.eng.RunTool(ctx, engine.Tool{
		Image: image, Deployment: r.d.Name, Script: pgLoadScript,
		Args:   []string{spec.DataDir + "/" + pgDir, "/tmp/gsd-in/" + backup.PGDumpName},
		Mounts: []engine.HelperMount{{Volume: r.d.Data.Name, HostPath: r.d.Data.HostPath, Target: spec.DataDir}},
		User:   fmt.Sprintf("%d:%d", uid, gid),
		Input:  fileStream(f, fileSize(m, backup.PGDumpName), "gsd-in/"+backup.PGDumpName), InputDir: "/tmp",
	})
	if err != nil {
		return fmt.Errorf("restore backup %s: %w", m.ID, err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("restore backup %s: pg_restore in a one-off container exited %d: %s", m.ID, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return r.restoreSecrets(ctx, store, m, id, dataDir)
}

func fileSize(m backup.Manifest, name string) int64 {
	for _, f := range m.Files {
		if f.Name == name {
			return f.Size
		}
	}
	return 0
}

// emptyScript removes everything in the data volume, dotfiles included.
const emptyScript = `set -eu
cd "$1"
rm -rf ./* ./.[!.]* ./..?*
`

// restoreVolume empties the data volume and extracts a volume backup into
// it with its owners and modes.
func (r *run) restoreVolume(ctx context.Context, store *backup.Store, m backup.Manifest, id, dataDir string) error {
	pe, err := r.pgEngine()
	if err != nil {
		return err
	}
	f, err := store.Open(m, backup.VolumeName)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := r.volumeTool(ctx, emptyScript, spec.DataDir); err != nil {
		return fmt.Errorf("restore backup %s: empty volume %s: %w", m.ID, r.d.Data.Source(), err)
	}
	// Through a helper that mounts the data volume alone, as the backup
	// was read: nothing lands in a cache volume mounted inside GPUStack's.
	hid, cleanup, err := r.dataOnly(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := pe.CopyInOwned(ctx, hid, "/data", f); err != nil {
		return fmt.Errorf("restore backup %s: %w", m.ID, err)
	}
	return nil
}
