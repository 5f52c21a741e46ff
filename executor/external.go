package executor

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// An external database (database_url) is dumped and restored by one-off
// containers of backup.tool_image on the deployment's own network, so they
// reach the database exactly as GPUStack does. The URL (for MySQL, its
// parts and MYSQL_PWD) travels in their environment, never in an argument,
// a label or a log: see observe.ExternalEnv.

const externalURLEnv = observe.ExternalURLEnv

// externalDumpPath is where the dump is written inside the tool container.
const externalDumpPath = "/tmp/gsd-out.dump"

// externalDumpScript dumps the database in pg_dump's custom format.
const externalDumpScript = `set -eu
pg_dump --format=custom --no-owner --lock-wait-timeout=120s --file="$1" --dbname="$` + externalURLEnv + `"
`

// externalRestoreScript empties the schema GPUStack uses and loads the
// dump ($1) in one transaction: tables a failed migration created are
// dropped with the rest, so the old release finds its own schema and
// nothing else. The database and its owner stay as they are.
const externalRestoreScript = `set -eu
psql -X -q -v ON_ERROR_STOP=1 --dbname="$` + externalURLEnv + `" -c 'DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;'
pg_restore --no-owner --no-privileges --single-transaction --exit-on-error --dbname="$` + externalURLEnv + `" "$1"
`

// mysqlConnect defines m, the mysql client on the database of the
// environment (GSD_DB_* and MYSQL_PWD, see observe.ExternalEnv).
const mysqlConnect = `m() { c=$1; shift; "$c" --host="$GSD_DB_HOST" --port="$GSD_DB_PORT" --user="$GSD_DB_USER" "$@"; }
`

// mysqlDumpScript dumps the database into $1: one consistent InnoDB
// snapshot, routines and triggers included, no tablespaces (which need a
// privilege GPUStack's user rarely has).
const mysqlDumpScript = `set -eu
` + mysqlConnect + `m mysqldump --single-transaction --routines --triggers --no-tablespaces --result-file="$1" "$GSD_DB_NAME"
`

// mysqlRestoreScript drops every table and view of the database (those a
// failed migration created included) and loads the dump $1. MySQL DDL
// cannot be undone by a transaction: a restore that fails halfway is
// reported, and the dump stays in the backup directory to load again.
const mysqlRestoreScript = `set -eu
` + mysqlConnect + `drops=$(m mysql --batch --skip-column-names "$GSD_DB_NAME" -e "SELECT CONCAT(IF(table_type = 'VIEW', 'DROP VIEW IF EXISTS ', 'DROP TABLE IF EXISTS '), CHAR(96), table_name, CHAR(96), ';') FROM information_schema.tables WHERE table_schema = DATABASE()")
printf 'SET FOREIGN_KEY_CHECKS=0;\n%s\nSET FOREIGN_KEY_CHECKS=1;\n' "$drops" | m mysql "$GSD_DB_NAME"
m mysql "$GSD_DB_NAME" < "$1"
`

// externalListScript runs pg_restore on the dump ($1) with the remaining
// arguments, for verification.
const externalListScript = `set -eu
f="$1"; shift
exec pg_restore "$@" "$f"
`

// backupExternal dumps the external database before a change. The dump is
// kept only when pg_restore reads its table of contents and finds the
// revision GPUStack stamped; a revision other than the one the plan
// expected stops the apply before anything changes.
func (r *run) backupExternal(ctx context.Context, m backup.Manifest) (*backup.Manifest, error) {
	image, err := r.externalToolImage(ctx)
	if err != nil {
		return nil, err
	}
	store, err := backup.Open(r.d.Backup.Dir, r.d.Name)
	if err != nil {
		return nil, err
	}
	env, err := observe.ExternalEnv(r.d)
	if err != nil {
		return nil, err
	}
	expected := m.Revision
	m.Engine = "external-" + r.d.DatabaseScheme
	m.Image = r.pd.Current.Image
	script, name, tool := externalDumpScript, backup.PGDumpName, "pg_dump"
	inspect := func(p string) (string, []string, error) { return r.inspectExternalDump(ctx, image, p) }
	if r.d.DatabaseScheme == config.SchemeMySQL {
		script, name, tool = mysqlDumpScript, backup.MySQLDumpName, "mysqldump"
		inspect = func(p string) (string, []string, error) {
			info, err := backup.InspectMySQLDump(p)
			return info.Revision, info.Tables, err
		}
	}
	pr, pw := io.Pipe()
	go func() {
		res, err := r.eng.RunTool(ctx, engine.Tool{
			Image: image, Deployment: r.d.Name, Script: script, Args: []string{externalDumpPath},
			Env: env, Network: observe.Network(r.d),
			Output: externalDumpPath, OutputTo: func(src io.Reader) error { _, err := io.Copy(pw, src); return err },
		})
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("%s in a one-off container of %s exited %d: %s", tool, image, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	out, err := store.CreateStream(m, backup.Stream{
		Method: plan.MethodExternalDump, Name: name, Source: pr,
		Check: func(p string, m *backup.Manifest) error {
			rev, tables, err := inspect(p)
			if err != nil {
				return err
			}
			// A first installation expects nothing: the database may be
			// empty, or hold something else, and the dump keeps it as found.
			if expected != "" && rev != expected {
				if rev == "" {
					return fmt.Errorf("the dump holds no alembic_version row (%d tables), the plan expected revision %q: is database_url the right database?", len(tables), expected)
				}
				return fmt.Errorf("the external database is at revision %q, the plan expected %q: run plan again", rev, expected)
			}
			m.Revision = rev
			m.Rows = nil
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("back up the external %s database of %s: %w", r.d.DatabaseScheme, r.d.Name, err)
	}
	return out, nil
}

// inspectExternalDump reads the dump at the local path p with pg_restore
// in a one-off container (no network): the tables whose data it holds and
// the revision in alembic_version ("" when the database has none).
func (r *run) inspectExternalDump(ctx context.Context, image, p string) (string, []string, error) {
	list, err := r.pgRestoreTool(ctx, image, p, "--list")
	if err != nil {
		return "", nil, err
	}
	tables := dumpTables(list)
	if !slices.Contains(tables, "alembic_version") {
		return "", tables, nil
	}
	data, err := r.pgRestoreTool(ctx, image, p, "--data-only", "--table=alembic_version", "--file=-")
	if err != nil {
		return "", nil, err
	}
	return dumpedRevision(data), tables, nil
}

// dumpTables lists the tables pg_restore --list shows data for.
func dumpTables(list string) []string {
	var tables []string
	for _, line := range strings.Split(list, "\n") {
		if strings.HasPrefix(line, ";") {
			continue
		}
		if i := strings.Index(line, " TABLE DATA public "); i >= 0 {
			if f := strings.Fields(line[i+len(" TABLE DATA public "):]); len(f) > 0 {
				tables = append(tables, f[0])
			}
		}
	}
	return tables
}

func (r *run) pgRestoreTool(ctx context.Context, image, p string, args ...string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("read the dump: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read the dump: %w", err)
	}
	res, err := r.eng.RunTool(ctx, engine.Tool{
		Image: image, Deployment: r.d.Name, Script: externalListScript,
		Args:  append([]string{"/tmp/gsd-in/" + backup.PGDumpName}, args...),
		Input: fileStream(f, st.Size(), "gsd-in/"+backup.PGDumpName), InputDir: "/tmp",
	})
	if err != nil {
		return "", fmt.Errorf("pg_restore %s: %w", args[0], err)
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("pg_restore %s exited %d: %s", args[0], res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return string(res.Stdout), nil
}

// readExternal reads the external database through observe.ReadExternal.
func (r *run) readExternal(ctx context.Context) (observe.Database, error) {
	image, err := r.externalToolImage(ctx)
	if err != nil {
		return observe.Database{}, err
	}
	db := observe.ReadExternal(ctx, r.eng, r.d, image)
	if db.Status != observe.DBRead {
		return db, errors.New(db.Reason)
	}
	return db, nil
}

// checkExternal verifies an external database after start: stamped with
// the release head, the head's probe passing, and after a restore at least
// the rows of the dump's tables.
func (r *run) checkExternal(ctx context.Context) error {
	if r.d.Backup.ToolImage == "" {
		r.res.Notes = append(r.res.Notes, "the external "+r.d.DatabaseScheme+" database was not read (no backup.tool_image to read it with): check alembic_version and the tables yourself")
		return nil
	}
	db, err := r.readExternal(ctx)
	if err != nil {
		return &Failure{Kind: FailRevision, Message: err.Error()}
	}
	head := r.pd.Target.Revision
	if head == "" {
		r.res.Notes = append(r.res.Notes, "the development image stamped revision "+db.Revision)
		return nil
	}
	if db.Revision != head {
		return &Failure{Kind: FailRevision, Message: fmt.Sprintf("the external database is stamped %q, want the release head %q", db.Revision, head)}
	}
	rev, _ := r.x.Catalog.Revision(head)
	if missing := rev.Probe().Check(db.Tables); len(missing) > 0 {
		return &Failure{Kind: FailProbe, Message: fmt.Sprintf("stamped %s but missing %v", head, missing)}
	}
	return nil
}

// restoreExternal loads an external dump back into the database the file
// names, GPUStack stopped: the way back from a failed migration.
func (r *run) restoreExternal(ctx context.Context, store *backup.Store, m backup.Manifest) error {
	if !r.d.ExternalDatabase() || "external-"+r.d.DatabaseScheme != m.Engine {
		return fmt.Errorf("backup %s is a dump of an %s database, and the file names an external %s database", m.ID, m.Engine, r.d.DatabaseScheme)
	}
	image, err := r.externalToolImage(ctx)
	if err != nil {
		return err
	}
	env, err := observe.ExternalEnv(r.d)
	if err != nil {
		return err
	}
	script, name := externalRestoreScript, backup.PGDumpName
	if r.d.DatabaseScheme == config.SchemeMySQL {
		script, name = mysqlRestoreScript, backup.MySQLDumpName
	}
	f, err := store.Open(m, name)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := r.eng.RunTool(ctx, engine.Tool{
		Image: image, Deployment: r.d.Name, Script: script,
		Args: []string{"/tmp/gsd-in/" + name}, Env: env,
		Network: observe.Network(r.d), Input: fileStream(f, fileSize(m, name), "gsd-in/"+name), InputDir: "/tmp",
	})
	if err != nil {
		return fmt.Errorf("restore backup %s: %w", m.ID, err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("restore backup %s into the external database: exited %d: %s", m.ID, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return nil
}

// fileStream is a tar holding the file name (one directory deep) with
// size bytes read from f.
func fileStream(f io.Reader, size int64, name string) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		now := time.Now()
		dir, _, _ := strings.Cut(name, "/")
		err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now})
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: now})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// externalToolImage is backup.tool_image, pulled when the policy allows.
func (r *run) externalToolImage(ctx context.Context) (string, error) {
	ref := r.d.Backup.ToolImage
	if ref == "" {
		return "", fmt.Errorf("backup.tool_image is not set: gpustack-deploy has no image to reach the external %s database with", r.d.DatabaseScheme)
	}
	img, err := r.eng.InspectImage(ctx, ref)
	if err != nil {
		return "", err
	}
	if img != nil {
		return img.ID, nil
	}
	if r.d.Policy.Pull == config.PullNever {
		return "", fmt.Errorf("backup.tool_image %s is not on host %s and policy pull = \"never\": load it there, or allow pulls", ref, r.d.Host)
	}
	if err := r.eng.PullImage(ctx, ref, r.x.Out, r.x.TTY); err != nil {
		return "", fmt.Errorf("pull backup.tool_image %s: %w", ref, err)
	}
	return ref, nil
}
