package image

import (
	"fmt"
	"strings"
)

// An external MySQL for tests of --database-url=mysql://…, run from the
// base image (MariaDB 10.11; nothing pulled): a container with
// ExternalMySQLEntrypoint, User ExternalPostgresUser (9999:9999) and the
// password in ExternalMySQLPasswordEnv initializes a data dir in its own
// /tmp, creates the user gpustack (from any host, with that password) with
// all privileges on an empty database gpustack, and runs mariadbd in the
// foreground on ExternalMySQLPort. root@localhost has no password and is
// reached over the unix socket ExternalMySQLSocket only, for
// `docker exec … mysql` (ExternalMySQLClient).
const (
	ExternalMySQLPasswordEnv = "GSD_EXTDB_PASSWORD"
	ExternalMySQLPort        = 3306
	ExternalMySQLSocket      = "/tmp/mysqld.sock"
	ExternalMySQLDatabase    = "gpustack"
	ExternalMySQLUser        = "gpustack"
)

const externalMySQLScript = `set -e
umask 077
D=/tmp/mysql
mariadb-install-db --no-defaults --datadir="$D" --auth-root-authentication-method=normal --skip-test-db >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }
printf "CREATE DATABASE gpustack CHARACTER SET utf8mb4;\nCREATE USER 'gpustack'@'%%' IDENTIFIED BY '%s';\nGRANT ALL ON gpustack.* TO 'gpustack'@'%%';\n" "$GSD_EXTDB_PASSWORD" >/tmp/init.sql
exec mariadbd --no-defaults --datadir="$D" --socket=/tmp/mysqld.sock --port=3306 --bind-address=0.0.0.0 \
	--skip-name-resolve --init-file=/tmp/init.sql --character-set-server=utf8mb4 \
	--innodb-buffer-pool-size=32M --log-error=/dev/stderr
`

// ExternalMySQLEntrypoint is the entrypoint of the database container. The
// password must be hex or otherwise free of quotes and backslashes.
func ExternalMySQLEntrypoint() []string {
	return []string{"sh", "-c", externalMySQLScript}
}

// ExternalMySQLURL is the URL GPUStack is given for the database container
// at ip.
func ExternalMySQLURL(password, ip string) string {
	return fmt.Sprintf("mysql://%s:%s@%s:%d/%s", ExternalMySQLUser, password, ip, ExternalMySQLPort, ExternalMySQLDatabase)
}

// ExternalMySQLClient is the command that runs query in the database as
// root over the container's socket; its output has no column names, one
// row a line, fields separated by a tab (NULL as "NULL").
func ExternalMySQLClient(query string) []string {
	return []string{"mysql", "--no-defaults", "-S", ExternalMySQLSocket, "-uroot", "-D", ExternalMySQLDatabase, "-N", "-B", "-e", query}
}

// ExternalMySQLReady is the command that exits 0 once the server answers
// (after its init file has created the user and the database).
func ExternalMySQLReady() []string {
	return []string{"mysqladmin", "--no-defaults", "-S", ExternalMySQLSocket, "-uroot", "--connect-timeout=2", "ping"}
}

// ExternalMySQLRevisionQuery prints the Alembic stamp, or nothing when
// alembic_version does not exist.
const ExternalMySQLRevisionQuery = `SET @q = IF((SELECT count(*) FROM information_schema.tables WHERE table_schema = 'gpustack' AND table_name = 'alembic_version') > 0,
	'SELECT group_concat(version_num) FROM gpustack.alembic_version', 'SELECT 1 FROM DUAL WHERE FALSE');
PREPARE s FROM @q; EXECUTE s`

// ExternalMySQLRowsQuery counts the rows of every table of the database,
// one "table<TAB>count" line each, as `gpustack emulator rows` does.
const ExternalMySQLRowsQuery = `SET @q = (SELECT group_concat(concat('SELECT ''', table_name, ''', count(*) FROM gpustack.` + "`" + `', table_name, '` + "`" + `') SEPARATOR ' UNION ALL ')
	FROM information_schema.tables WHERE table_schema = 'gpustack' AND table_type = 'BASE TABLE');
SET @q = coalesce(@q, 'SELECT 1, 1 FROM DUAL WHERE FALSE');
PREPARE s FROM @q; EXECUTE s`

// ParseExternalMySQLRows decodes the output of ExternalMySQLRowsQuery.
func ParseExternalMySQLRows(out string) (map[string]int64, error) {
	counts := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		table, n, ok := strings.Cut(line, "\t")
		var v int64
		if _, err := fmt.Sscan(n, &v); !ok || err != nil {
			return nil, fmt.Errorf("row counts: line %q", line)
		}
		counts[table] = v
	}
	return counts, nil
}
