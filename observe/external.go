package observe

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
)

// An external database (database_url) is read the way the embedded one
// is, in a read-only transaction, by psql (PGQuery) or the mysql client in
// a one-off container of backup.tool_image on the deployment's network: it
// reaches the database as GPUStack does. The URL, or for MySQL its parts,
// is in the container's environment only.

// ExternalURLEnv carries the database URL into one-off containers.
const ExternalURLEnv = "GSD_DATABASE_URL"

// externalQueryScript runs the query file $1 against $GSD_DATABASE_URL.
const externalQueryScript = `set -eu
PGOPTIONS="-c default_transaction_read_only=on" PGCONNECT_TIMEOUT=10 exec psql -X -q -A -t --dbname="$` + ExternalURLEnv + `" -f "$1"
`

// mysqlQueryScript prints what PGQuery prints (S|size, C|table|column,
// N|table|rows, R|revision) for a MySQL or MariaDB database, read-only. The
// connection comes from GSD_DB_HOST, GSD_DB_PORT, GSD_DB_USER, GSD_DB_NAME
// and MYSQL_PWD.
const mysqlQueryScript = `set -eu
m() { mysql --batch --skip-column-names --init-command="SET SESSION TRANSACTION READ ONLY" \
	--connect-timeout=10 --host="$GSD_DB_HOST" --port="$GSD_DB_PORT" --user="$GSD_DB_USER" "$GSD_DB_NAME" -e "$1"; }
# q runs one query and prints its rows with | between fields; a failing
# query stops the script (an assignment keeps the client's exit status).
q() { r=$(m "$1"); [ -z "$r" ] || printf '%s\n' "$r" | tr '\t' '|'; }
q "SELECT 'S', COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = DATABASE()"
q "SELECT 'C', c.table_name, c.column_name FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name WHERE c.table_schema = DATABASE() AND t.table_type = 'BASE TABLE' ORDER BY 2, c.ordinal_position"
tables=$(m "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")
for t in $tables; do
	q "SELECT 'N', '$t', COUNT(*) FROM \` + "`" + `$t\` + "`" + `"
	if [ "$t" = alembic_version ]; then
		q "SELECT 'R', version_num FROM alembic_version"
	fi
done
`

// ExternalEnv is the environment through which a one-off container reaches
// d's external database: GSD_DATABASE_URL for PostgreSQL; for MySQL the
// parts of the URL, the password as MYSQL_PWD. Errors never hold the URL.
func ExternalEnv(d config.Deployment) ([]string, error) {
	switch d.DatabaseScheme {
	case config.SchemePostgreSQL:
		return []string{ExternalURLEnv + "=" + d.DatabaseURL.S}, nil
	case config.SchemeMySQL:
		u, err := url.Parse(d.DatabaseURL.S)
		if err != nil || u.Host == "" {
			return nil, errors.New("database_url is not a mysql://user:password@host[:port]/database URL")
		}
		port := u.Port()
		if port == "" {
			port = "3306"
		}
		password, _ := u.User.Password()
		name := strings.TrimPrefix(u.Path, "/")
		if name == "" || u.User.Username() == "" {
			return nil, errors.New("database_url names no user or no database: write mysql://user:password@host[:port]/database")
		}
		return []string{"GSD_DB_HOST=" + u.Hostname(), "GSD_DB_PORT=" + port, "GSD_DB_USER=" + u.User.Username(),
			"GSD_DB_NAME=" + name, "MYSQL_PWD=" + password}, nil
	default:
		return nil, fmt.Errorf("gpustack-deploy cannot reach a %s database", d.DatabaseScheme)
	}
}

// ToolRunner runs one-off containers.
type ToolRunner interface {
	RunTool(ctx context.Context, t engine.Tool) (engine.ToolResult, error)
}

// Network is the network mode of a deployment's container.
func Network(d config.Deployment) string {
	if d.NetworkMode != "" {
		return d.NetworkMode
	}
	return config.NetworkBridge
}

// ReadExternal reads the external PostgreSQL of d with psql from a one-off
// container of image. Failures become DBUnknown with a reason; the URL is
// never part of it.
func ReadExternal(ctx context.Context, eng ToolRunner, d config.Deployment, image string) Database {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	env, err := ExternalEnv(d)
	if err != nil {
		return Database{Status: DBUnknown, Reason: "read the external database: " + err.Error()}
	}
	t := engine.Tool{
		Image: image, Deployment: d.Name, Script: externalQueryScript, Args: []string{"/tmp/gsd-in/query.sql"},
		Env: env, Network: Network(d), Input: FileTar("gsd-in/query.sql", PGQuery), InputDir: "/tmp",
	}
	if d.DatabaseScheme == config.SchemeMySQL {
		t.Script, t.Args, t.Input, t.InputDir = mysqlQueryScript, nil, nil, ""
	}
	res, err := eng.RunTool(ctx, t)
	if err != nil {
		return Database{Status: DBUnknown, Reason: "read the external database: " + err.Error()}
	}
	if res.ExitCode != 0 {
		return Database{Status: DBUnknown, Reason: fmt.Sprintf("read the external database: exit %d: %s", res.ExitCode, lastLines(strings.ReplaceAll(string(res.Stderr), d.DatabaseURL.S, "<database_url>"), 3))}
	}
	db, err := ParsePGOutput(res.Stdout)
	if err != nil {
		return Database{Status: DBUnknown, Reason: "read the external database: " + err.Error()}
	}
	db.Engine = ""
	return db
}

// readExternal reads d's external database when it can be done without
// pulling: PostgreSQL, and backup.tool_image already on the host. nil
// means not read.
func readExternal(ctx context.Context, eng *engine.Client, d config.Deployment) *Database {
	if (d.DatabaseScheme != config.SchemePostgreSQL && d.DatabaseScheme != config.SchemeMySQL) || d.Backup.ToolImage == "" {
		return nil
	}
	img, err := eng.InspectImage(ctx, d.Backup.ToolImage)
	if err != nil || img == nil {
		return nil
	}
	db := ReadExternal(ctx, eng, d, img.ID)
	return &db
}

// FileTar is a tar stream holding one file, name (one directory deep),
// with content: how a script reaches a one-off container.
func FileTar(name, content string) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	if dir, _, ok := strings.Cut(name, "/"); ok {
		_ = tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now})
	}
	_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content)), ModTime: now})
	_, _ = tw.Write([]byte(content))
	_ = tw.Close()
	return &buf
}
