package executor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// PGEngine is what backups and restores of v2's embedded PostgreSQL need
// beyond Engine: tar streams that keep numeric owners, streamed commands
// in a running container, and the owner of a file.
type PGEngine interface {
	observe.PGRunner
	CopyOut(ctx context.Context, id, path string) (io.ReadCloser, error)
	CopyInOwned(ctx context.Context, id, dir string, r io.Reader) error
}

var _ PGEngine = (*engine.Client)(nil)

func (r *run) pgEngine() (PGEngine, error) {
	pe, ok := r.eng.(PGEngine)
	if !ok {
		return nil, fmt.Errorf("the engine of host %s cannot copy PostgreSQL data with its owners", r.d.Host)
	}
	return pe, nil
}

// backupMethod is the method an action asks for, or, when it names none,
// the one the data volume calls for: pg-files for an embedded PostgreSQL,
// sqlite otherwise.
func (r *run) backupMethod(ctx context.Context, asked plan.BackupMethod) (plan.BackupMethod, error) {
	if asked != "" {
		return asked, nil
	}
	if r.d.ExternalDatabase() {
		if r.d.Backup.ExternalAcknowledged {
			return "", fmt.Errorf("%s uses an external %s database that its owner backs up (backup { external = \"acknowledged\" }): gpustack-deploy takes no backup of it", r.d.Name, r.d.DatabaseScheme)
		}
		return plan.MethodExternalDump, nil
	}
	pgDir, err := r.findPGDir(ctx)
	if err != nil {
		return "", err
	}
	if pgDir != "" {
		return plan.MethodPGFiles, nil
	}
	return plan.MethodSQLite, nil
}

// findPGDir looks for PGDATA in the data volume through any container of
// ours that mounts it, without stopping anything, or a helper.
func (r *run) findPGDir(ctx context.Context) (string, error) {
	id, dataDir, cleanup, err := r.volumeView(ctx)
	if err != nil {
		return "", err
	}
	defer cleanup()
	dir, _, err := observe.FindPGDir(ctx, r.eng, id, dataDir)
	return dir, err
}

// volumeView returns a container of ours that mounts the data volume as it
// is (running or not), or a new helper, and a cleanup function.
func (r *run) volumeView(ctx context.Context) (string, string, func(), error) {
	for _, name := range []string{r.d.ContainerName, r.d.ContainerName + observe.PreviousSuffix} {
		ct, err := r.eng.InspectContainer(ctx, name)
		if err != nil {
			return "", "", nil, err
		}
		if ct != nil && r.ours(ct) && mountsData(ct, r.d.Data.Source()) {
			return ct.ID, spec.DataDir, func() {}, nil
		}
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

// readPG reads the embedded PostgreSQL in PGDATA pgDir through container
// id: psql inside it when it is GPUStack running, a read-only one-off
// container of its image otherwise.
func (r *run) readPG(ctx context.Context, pe PGEngine, id, dataDir, pgDir string) (observe.Database, error) {
	t := observe.PGTarget{ID: id, DataDir: dataDir, Deployment: r.d.Name, Data: r.d.Data}
	ct, err := r.eng.InspectContainer(ctx, id)
	if err != nil {
		return observe.Database{}, err
	}
	if ct != nil && ct.Labels[spec.LabelRole] != spec.RoleHelper {
		t.Image = ct.ImageID
		if ct.Running() {
			t.Running, t.Port = true, observe.PGPort(ct.Args, ct.Env)
		}
	}
	if t.Image == "" {
		if t.Image, err = r.toolImage(ctx); err != nil {
			return observe.Database{}, err
		}
	}
	db := observe.ReadPostgres(ctx, pe, t, pgDir)
	if db.Status != observe.DBRead {
		return db, fmt.Errorf("read the embedded PostgreSQL: %s", db.Reason)
	}
	return db, nil
}

// backupPG takes a pg-files or volume backup: it reads the revision and
// row counts while GPUStack still runs (or from the stopped data), stops
// GPUStack, streams PGDATA (or the whole volume) out through the Engine
// API with numeric owners and modes, and keeps it only when pg_control
// says the cluster was shut down cleanly.
func (r *run) backupPG(ctx context.Context, method plan.BackupMethod, m backup.Manifest) (*backup.Manifest, error) {
	pe, err := r.pgEngine()
	if err != nil {
		return nil, err
	}
	viewID, viewDir, viewCleanup, err := r.volumeView(ctx)
	if err != nil {
		return nil, err
	}
	pgDir, _, err := observe.FindPGDir(ctx, r.eng, viewID, viewDir)
	if err != nil {
		viewCleanup()
		return nil, err
	}
	var db observe.Database
	switch {
	case pgDir != "":
		db, err = r.readPG(ctx, pe, viewID, viewDir, pgDir)
	case method == plan.MethodVolume:
		db, err = r.readSQLite(ctx, viewID, viewDir)
	default:
		err = fmt.Errorf("volume %s holds no embedded PostgreSQL (no %s)", r.d.Data.Source(), strings.Join(observe.PGDirs, " or "))
	}
	viewCleanup()
	if err != nil {
		return nil, err
	}
	if m.Revision != "" && db.Revision != m.Revision {
		return nil, fmt.Errorf("the database is at revision %q, the plan expected %q: run plan again", db.Revision, m.Revision)
	}
	m.Revision, m.Rows, m.Engine, m.PGDir = db.Revision, db.Rows, string(db.Engine), pgDir
	id, dataDir, cleanup, err := r.dataReader(ctx)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if m.ImageID == "" {
		m.ImageID = imageIDOf(ctx, r.eng, id)
	}
	return r.storeFiles(ctx, pe, id, dataDir, method, m, false)
}

// storeFiles streams PGDATA (pg-files) or the whole data volume (volume)
// out of the stopped container id into a backup of the store; unverified
// keeps a safety copy even when it would fail its check.
func (r *run) storeFiles(ctx context.Context, pe PGEngine, id, dataDir string, method plan.BackupMethod, m backup.Manifest, unverified bool) (*backup.Manifest, error) {
	store, err := backup.Open(r.d.Backup.Dir, r.d.Name)
	if err != nil {
		return nil, err
	}
	st := backup.Stream{Method: method, Unverified: unverified}
	switch method {
	case plan.MethodPGFiles:
		// The secrets first: the engine serves one copy out of a
		// container at a time, and the archive below stays open.
		secrets, err := os.MkdirTemp(store.Dir, "secrets-*.tmp")
		if err != nil {
			return nil, fmt.Errorf("back up %s: %w", r.d.Name, err)
		}
		defer os.RemoveAll(secrets)
		if err := copyPGSecrets(ctx, r.eng, id, dataDir, secrets); err != nil {
			return nil, err
		}
		rc, err := pe.CopyOut(ctx, id, dataDir+"/"+m.PGDir)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		st.Name, st.Source, st.SecretsDir, st.Check = backup.PGFilesName, rc, secrets, backup.CheckPGFiles
	case plan.MethodVolume:
		// Through a helper that mounts the data volume alone: GPUStack's
		// container would add the cache volume mounted inside it.
		hid, cleanup, err := r.dataOnly(ctx)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		rc, err := pe.CopyOut(ctx, hid, "/data")
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		rel := backup.Reroot(rc, "data", ".")
		defer rel.Close()
		st.Name, st.Source, st.Check = backup.VolumeName, rel, backup.CheckVolume
	default:
		return nil, fmt.Errorf("%s is not a file-level backup method", method)
	}
	out, err := store.CreateStream(m, st)
	if err != nil {
		return nil, fmt.Errorf("back up %s (%s): %w", r.d.Name, method, err)
	}
	return out, nil
}

// dataOnly creates a helper container that mounts the data volume, and
// nothing else, at /data.
func (r *run) dataOnly(ctx context.Context) (string, func(), error) {
	h, ok := r.eng.(Helpers)
	if !ok {
		return "", nil, fmt.Errorf("the engine of host %s cannot create helper containers", r.d.Host)
	}
	id, err := h.CreateHelper(ctx, r.d.Name, engine.HelperMount{Volume: r.d.Data.Name, HostPath: r.d.Data.HostPath, Target: "/data"})
	if err != nil {
		return "", nil, err
	}
	return id, func() { _ = r.eng.RemoveContainer(context.WithoutCancel(ctx), id) }, nil
}

// readSQLite reads a v0.x SQLite database through container id (for the
// manifest of a volume backup).
func (r *run) readSQLite(ctx context.Context, id, dataDir string) (observe.Database, error) {
	tmp, err := os.MkdirTemp("", "gpustack-deploy-read-")
	if err != nil {
		return observe.Database{}, err
	}
	defer os.RemoveAll(tmp)
	db := observe.ReadDatabaseFrom(ctx, r.eng, id, dataDir, tmp, schemaRows)
	switch db.Status {
	case observe.DBRead, observe.DBAbsent:
		return db, nil
	default:
		return db, fmt.Errorf("read the database: %s", db.Reason)
	}
}

// copyPGSecrets copies the PGSecretFiles present in dataDir into dst.
func copyPGSecrets(ctx context.Context, eng observe.FileReader, id, dataDir, dst string) error {
	for _, name := range backup.PGSecretFiles {
		if _, err := eng.CopyFile(ctx, id, dataDir+"/"+name, dst+"/"+name); err != nil && !engine.IsNotFound(err) {
			return fmt.Errorf("copy %s: %w", name, err)
		}
	}
	return nil
}

// pgDumpScript streams pg_dump's custom format of database gpustack from
// GPUStack's own server to stdout. It gives up rather than wait forever
// behind a lock GPUStack holds (a migration in progress).
const pgDumpScript = observe.PGBinScript + `if [ -z "${PGPASSWORD:-}" ] && [ -r "$2/postgres_root_pass" ]; then PGPASSWORD=$(cat "$2/postgres_root_pass"); export PGPASSWORD; fi
exec pg_dump -Fc --lock-wait-timeout=120s -h 127.0.0.1 -p "$1" -U root -d gpustack
`

// backupDump takes a pg-dump backup from the running container: pg_dump
// streams into the backup file, and the dump is accepted once pg_restore
// lists a TABLE DATA entry for every table and alembic_version's data in
// it is the revision read before.
func (r *run) backupDump(ctx context.Context, m backup.Manifest) (*backup.Manifest, error) {
	pe, err := r.pgEngine()
	if err != nil {
		return nil, err
	}
	ct, err := r.eng.InspectContainer(ctx, r.d.ContainerName)
	if err != nil {
		return nil, err
	}
	if ct == nil || !r.ours(ct) || !ct.Running() || !mountsData(ct, r.d.Data.Source()) {
		return nil, fmt.Errorf("a pg-dump backup is taken from the running GPUStack, and %s is not running; use method pg-files", r.d.ContainerName)
	}
	pgDir, _, err := observe.FindPGDir(ctx, r.eng, ct.ID, spec.DataDir)
	if err != nil {
		return nil, err
	}
	if pgDir == "" {
		return nil, fmt.Errorf("volume %s holds no embedded PostgreSQL", r.d.Data.Source())
	}
	db, err := r.readPG(ctx, pe, ct.ID, spec.DataDir, pgDir)
	if err != nil {
		return nil, err
	}
	if m.Revision != "" && db.Revision != m.Revision {
		return nil, fmt.Errorf("the database is at revision %q, the plan expected %q: run plan again", db.Revision, m.Revision)
	}
	m.Revision, m.Rows, m.Engine, m.PGDir = db.Revision, db.Rows, string(db.Engine), pgDir
	if m.ImageID == "" {
		m.ImageID = ct.ImageID
	}
	store, err := backup.Open(r.d.Backup.Dir, r.d.Name)
	if err != nil {
		return nil, err
	}
	secrets, err := os.MkdirTemp(store.Dir, "secrets-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", r.d.Name, err)
	}
	defer os.RemoveAll(secrets)
	if err := copyPGSecrets(ctx, r.eng, ct.ID, spec.DataDir, secrets); err != nil {
		return nil, err
	}
	port := strconv.Itoa(observe.PGPort(ct.Args, ct.Env))
	pr, pw := io.Pipe()
	go func() {
		var stderr bytes.Buffer
		code, err := pe.ExecStream(ctx, ct.ID, engine.ExecOptions{
			Cmd: []string{"sh", "-c", pgDumpScript, "sh", port, spec.DataDir}, Stdout: pw, Stderr: &stderr,
		})
		if err == nil && code != 0 {
			err = fmt.Errorf("pg_dump exited %d: %s", code, strings.TrimSpace(stderr.String()))
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	out, err := store.CreateStream(m, backup.Stream{
		Method: plan.MethodPGDump, Name: backup.PGDumpName, Source: pr, SecretsDir: secrets,
		Check: func(p string, m *backup.Manifest) error { return checkDump(ctx, pe, ct.ID, p, m) },
	})
	if err != nil {
		return nil, fmt.Errorf("back up %s (pg-dump): %w", r.d.Name, err)
	}
	return out, nil
}

// pgRestoreScript runs pg_restore with its arguments on the dump on stdin.
const pgRestoreScript = observe.PGBinScript + `exec pg_restore "$@"`

// checkDump verifies a pg_dump archive with pg_restore inside the running
// container id, the dump on stdin: its table of contents must list the
// data of every table the manifest counts, and the data of alembic_version
// must be the manifest's revision.
func checkDump(ctx context.Context, pe PGEngine, id, p string, m *backup.Manifest) error {
	list, err := pgRestore(ctx, pe, id, p, "--list")
	if err != nil {
		return err
	}
	toc := dumpTables(list)
	for table := range m.Rows {
		if !slices.Contains(toc, table) {
			return fmt.Errorf("pg_restore --list shows no data for table %s", table)
		}
	}
	data, err := pgRestore(ctx, pe, id, p, "--data-only", "--table=alembic_version", "--file=-")
	if err != nil {
		return err
	}
	if rev := dumpedRevision(data); rev != m.Revision {
		return fmt.Errorf("the dump's alembic_version holds %q, want %q", rev, m.Revision)
	}
	return nil
}

func pgRestore(ctx context.Context, pe PGEngine, id, p string, args ...string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("read the dump: %w", err)
	}
	defer f.Close()
	var stdout, stderr bytes.Buffer
	code, err := pe.ExecStream(ctx, id, engine.ExecOptions{
		Cmd: append([]string{"sh", "-c", pgRestoreScript, "sh"}, args...), Stdin: f, Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		return "", fmt.Errorf("pg_restore %s: %w", args[0], err)
	}
	if code != 0 {
		return "", fmt.Errorf("pg_restore %s exited %d: %s", args[0], code, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// dumpedRevision finds the row of alembic_version in pg_restore's SQL.
func dumpedRevision(sql string) string {
	lines := strings.Split(sql, "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "COPY public.alembic_version ") && i+1 < len(lines) && lines[i+1] != `\.` {
			return strings.TrimSpace(lines[i+1])
		}
	}
	return ""
}
