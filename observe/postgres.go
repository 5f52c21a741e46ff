package observe

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// PGDirs are the places GPUStack v2 keeps PGDATA of its embedded
// PostgreSQL, relative to the data directory, the live spelling first:
// v2.0.0 used postgres/data, and v2.0.1+ moves it to postgresql/data when
// that is absent and ignores it (with a warning) when both exist (#3676).
var PGDirs = []string{"postgresql/data", "postgres/data"}

// DefaultPGPort is the embedded PostgreSQL's port unless --database-port
// or GPUSTACK_DATABASE_PORT says otherwise.
const DefaultPGPort = 5432

// PGRunner is what reading the embedded PostgreSQL needs from an engine:
// files through a container's mounts, a command inside a running
// container, and one-off tool containers.
type PGRunner interface {
	FileReader
	ExecStream(ctx context.Context, id string, o engine.ExecOptions) (int, error)
	RunTool(ctx context.Context, t engine.Tool) (engine.ToolResult, error)
	Owner(ctx context.Context, id, path string) (uid, gid int, err error)
}

var _ PGRunner = (*engine.Client)(nil)

// PGTarget says where an embedded PostgreSQL is and how to reach it.
type PGTarget struct {
	// ID is a container that mounts the data volume at DataDir: the
	// deployment's own container or a helper that is never started.
	ID      string
	DataDir string
	// Running means ID is GPUStack's running container: the database is
	// read through psql inside it, on Port.
	Running bool
	Port    int
	// Image is the image a one-off container reads a stopped database
	// with; it must hold the PostgreSQL release that wrote the data.
	Image      string
	Deployment string
	// Data is the data volume a one-off container mounts read-only.
	Data config.Volume
}

// FindPGDir returns the live PGDATA directory under dataDir inside
// container id (relative, one of PGDirs), "" when there is none, and the
// other spellings present beside it.
func FindPGDir(ctx context.Context, eng FileReader, id, dataDir string) (string, []string, error) {
	var live string
	var stale []string
	for _, dir := range PGDirs {
		found, _, err := eng.Stat(ctx, id, dataDir+"/"+dir+"/PG_VERSION")
		if err != nil {
			return "", nil, err
		}
		switch {
		case found && live == "":
			live = dir
		case found:
			stale = append(stale, dir)
		}
	}
	return live, stale, nil
}

// ReadPostgres reads the embedded PostgreSQL whose PGDATA is pgDir (one of
// PGDirs) under t.DataDir: through psql in the running container, or, when
// GPUStack is stopped, through a one-off container that copies PGDATA from
// the read-only volume into its own /tmp, starts PostgreSQL there without
// TCP, and runs the same queries. Either way the volume is never written.
// Failures become DBUnknown with a reason.
func ReadPostgres(ctx context.Context, eng PGRunner, t PGTarget, pgDir string) Database {
	db := Database{Engine: catalog.EngineEmbeddedPostgres, PGDir: pgDir}
	done, _, _ := eng.Stat(ctx, t.ID, t.DataDir+"/run/state_migration_done")
	db.MigrationDone = done
	var (
		out []byte
		err error
	)
	if t.Running {
		out, err = queryRunning(ctx, eng, t)
	} else {
		out, err = queryStopped(ctx, eng, t, pgDir)
	}
	if err != nil {
		db.Status, db.Reason = DBUnknown, err.Error()
		return db
	}
	read, err := ParsePGOutput(out)
	if err != nil {
		db.Status, db.Reason = DBUnknown, err.Error()
		return db
	}
	read.Engine, read.PGDir, read.MigrationDone = db.Engine, pgDir, done
	return read
}

// PGQuery is one psql script whose tab-free, unaligned output ParsePGOutput
// reads: S|size, C|table|column, N|table|rows, R|revision. Row counts are
// generated per table with \gexec, so no XML support is needed.
const PGQuery = `\set ON_ERROR_STOP on
SELECT 'S', pg_database_size(current_database());
SELECT 'C', c.table_name, c.column_name FROM information_schema.columns c
  JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
  WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' ORDER BY 2, 3;
SELECT format('SELECT %L, %L, count(*) FROM public.%I', 'N', table_name, table_name)
  FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name \gexec
SELECT 'SELECT ''R'', version_num FROM public.alembic_version'
  WHERE to_regclass('public.alembic_version') IS NOT NULL \gexec
`

// PGBinScript puts the PostgreSQL programs of the release that wrote
// PGDATA ($PGV, when set) or of the newest one in the image first on PATH.
// GPUStack's image and Debian keep them in /usr/lib/postgresql/<major>/bin.
const PGBinScript = `P=
for d in /usr/lib/postgresql/*/bin /usr/local/pgsql/bin; do
	if [ -x "$d/psql" ]; then P="$d"; fi
done
if [ -n "${PGV:-}" ] && [ -x "/usr/lib/postgresql/$PGV/bin/postgres" ]; then P="/usr/lib/postgresql/$PGV/bin"; fi
if [ -n "$P" ]; then PATH="$P:$PATH"; fi
command -v psql >/dev/null 2>&1 || { echo "no psql in the image" >&2; exit 127; }
`

// runningScript runs psql against GPUStack's own server on 127.0.0.1,
// where pg_hba.conf trusts root; the root password, when the file holds
// one, covers a stricter configuration. The queries come on stdin.
const runningScript = PGBinScript + `if [ -z "${PGPASSWORD:-}" ] && [ -r "$2/postgres_root_pass" ]; then PGPASSWORD=$(cat "$2/postgres_root_pass"); export PGPASSWORD; fi
exec psql -X -q -A -t -h 127.0.0.1 -p "$1" -U root -d gpustack -f -
`

func queryRunning(ctx context.Context, eng PGRunner, t PGTarget) ([]byte, error) {
	port := t.Port
	if port == 0 {
		port = DefaultPGPort
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code, err := eng.ExecStream(ctx, t.ID, engine.ExecOptions{
		Cmd: []string{"sh", "-c", runningScript, "sh", strconv.Itoa(port), t.DataDir},
		// Read-only transactions: observing never writes, whatever a query does.
		Env:   []string{"PGOPTIONS=-c default_transaction_read_only=on", "PGCONNECT_TIMEOUT=10"},
		Stdin: strings.NewReader(PGQuery), Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("read the database through psql: %w", err)
	}
	if code != 0 {
		return nil, fmt.Errorf("read the database through psql in the running container: exit %d: %s", code, lastLines(stderr.String(), 3))
	}
	return stdout.Bytes(), nil
}

// StandaloneScript starts a private PostgreSQL on PGDATA $PGD: no TCP,
// a socket in $W, trust for local connections through an hba file of its
// own, and a configuration that ignores GPUStack's postgresql.conf (whose
// log directory lies on the volume). It defines pg_up and pg_down (a fast,
// clean shut-down); the caller sets W (a scratch directory), PGD and PGV,
// and runs as PGDATA's owner.
const StandaloneScript = PGBinScript + `printf 'local all all trust\n' > "$W/hba.conf"
: > "$W/ident.conf"
: > "$W/postgresql.conf"
pg_up() {
	rm -f "$PGD/postmaster.pid"
	postgres -D "$PGD" -c config_file="$W/postgresql.conf" -c hba_file="$W/hba.conf" -c ident_file="$W/ident.conf" \
		-c listen_addresses= -c unix_socket_directories="$W" -c port=5432 -c logging_collector=off \
		-c shared_buffers=32MB -c max_connections=20 >"$W/server.log" 2>&1 &
	PGPID=$!
	i=0
	until pg_isready -q -h "$W" -p 5432 -U root -d postgres; do
		i=$((i+1))
		if [ "$i" -gt 600 ] || ! kill -0 "$PGPID" 2>/dev/null; then
			echo "PostgreSQL did not start:" >&2; tail -n 5 "$W/server.log" >&2; exit 3
		fi
		sleep 0.1
	done
}
pg_down() {
	kill -INT "$PGPID"
	wait "$PGPID" || { echo "PostgreSQL did not shut down cleanly:" >&2; tail -n 5 "$W/server.log" >&2; return 4; }
}
`

// stoppedScript copies PGDATA ($1, read-only) into /tmp and reads the copy;
// the queries are $2.
const stoppedScript = `set -eu
W=/tmp/gsd-read
PGD="$W/data"
mkdir -p "$W"
PGV=$(cat "$1/PG_VERSION")
` + StandaloneScript + `cp -a "$1" "$PGD"
chmod 700 "$PGD"
pg_up
printf '%s' "$2" | psql -X -q -A -t -h "$W" -p 5432 -U root -d gpustack -f - || { code=$?; pg_down; exit $code; }
pg_down
`

func queryStopped(ctx context.Context, eng PGRunner, t PGTarget, pgDir string) ([]byte, error) {
	if t.Image == "" {
		return nil, fmt.Errorf("GPUStack is stopped and no local image can read its PostgreSQL")
	}
	uid, gid, err := eng.Owner(ctx, t.ID, t.DataDir+"/"+pgDir+"/PG_VERSION")
	if err != nil {
		return nil, err
	}
	res, err := eng.RunTool(ctx, engine.Tool{
		Image: t.Image, Deployment: t.Deployment, Script: stoppedScript,
		Args:   []string{spec.DataDir + "/" + pgDir, PGQuery},
		Mounts: []engine.HelperMount{{Volume: t.Data.Name, HostPath: t.Data.HostPath, Target: spec.DataDir, ReadOnly: true}},
		// PostgreSQL runs only as the owner of its data directory.
		User: fmt.Sprintf("%d:%d", uid, gid),
	})
	if err != nil {
		return nil, fmt.Errorf("read the stopped database: %w", err)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("read the stopped database in a one-off container of %s: exit %d: %s", t.Image, res.ExitCode, lastLines(string(res.Stderr), 4))
	}
	return res.Stdout, nil
}

// ParsePGOutput reads the output of PGQuery.
func ParsePGOutput(out []byte) (Database, error) {
	db := Database{Status: DBRead, Engine: catalog.EngineEmbeddedPostgres, Tables: map[string][]string{}, Rows: map[string]int64{}}
	sawSize := false
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		switch {
		case f[0] == "S" && len(f) == 2:
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return Database{}, fmt.Errorf("database size %q: %w", f[1], err)
			}
			db.Size, sawSize = n, true
		case f[0] == "C" && len(f) == 3:
			db.Tables[f[1]] = append(db.Tables[f[1]], f[2])
		case f[0] == "N" && len(f) == 3:
			n, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return Database{}, fmt.Errorf("row count of %s %q: %w", f[1], f[2], err)
			}
			db.Rows[f[1]] = n
			if _, ok := db.Tables[f[1]]; !ok {
				db.Tables[f[1]] = []string{}
			}
		case f[0] == "R" && len(f) == 2:
			if db.Revision != "" && db.Revision != f[1] {
				return Database{}, fmt.Errorf("alembic_version holds several revisions (%s, %s)", db.Revision, f[1])
			}
			db.Revision = f[1]
		default:
			return Database{}, fmt.Errorf("unexpected line from psql: %q", line)
		}
	}
	if !sawSize {
		return Database{}, fmt.Errorf("psql printed no database size: the query did not run")
	}
	for t := range db.Tables {
		sort.Strings(db.Tables[t])
	}
	return db, nil
}

// PGPort is the port GPUStack's embedded PostgreSQL listens on inside a
// container started with args and env: --database-port wins over
// GPUSTACK_DATABASE_PORT (facts §2.2), and both over 5432.
func PGPort(args, env []string) int {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--database-port="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
		if a == "--database-port" && i+1 < len(args) {
			if n, err := strconv.Atoi(args[i+1]); err == nil {
				return n
			}
		}
	}
	if n, err := strconv.Atoi(envValue(env, "GPUSTACK_DATABASE_PORT")); err == nil {
		return n
	}
	return DefaultPGPort
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
