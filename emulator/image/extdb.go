package image

import (
	"fmt"
	"strings"
)

// An external PostgreSQL for tests of --database-url / GPUSTACK_DATABASE_URL,
// run from the PostgreSQL base image (nothing pulled): a container with
// ExternalPostgresEntrypoint, User ExternalPostgresUser and the password in
// ExternalPostgresPasswordEnv initializes a cluster in its own /tmp as
// gpustack (uid 9999), creates the login role gpustack (scram-sha-256)
// owning an empty database gpustack, accepts password logins from every
// address on ExternalPostgresPort, and runs postgres in the foreground. The
// superuser postgres is trusted on the unix socket in /tmp only, for
// `docker exec … psql -h /tmp -U postgres`.
const (
	ExternalPostgresPasswordEnv = "GSD_EXTDB_PASSWORD"
	ExternalPostgresPort        = 5432
	ExternalPostgresSocketDir   = "/tmp"
	ExternalPostgresDatabase    = "gpustack"
	ExternalPostgresRole        = "gpustack"
)

// ExternalPostgresUser is the container user ("9999:9999").
var ExternalPostgresUser = fmt.Sprintf("%d:%d", PostgresUID, PostgresUID)

const externalPostgresScript = `set -e
umask 077
D=/tmp/pgdata
printf '%s\n' "$GSD_EXTDB_PASSWORD" >/tmp/pwfile
initdb -D "$D" -U postgres --pwfile=/tmp/pwfile -E UTF8 --no-locale --auth-local=trust --auth-host=scram-sha-256 >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log; exit 1; }
rm -f /tmp/pwfile
echo 'host all all 0.0.0.0/0 scram-sha-256' >>"$D/pg_hba.conf"
echo 'host all all ::/0 scram-sha-256' >>"$D/pg_hba.conf"
printf "CREATE ROLE gpustack LOGIN PASSWORD '%s';\nCREATE DATABASE gpustack OWNER gpustack;\n" "$GSD_EXTDB_PASSWORD" |
	postgres --single -D "$D" postgres >/tmp/single.log 2>&1 || { cat /tmp/single.log; exit 1; }
exec postgres -D "$D" -k /tmp -p 5432 -c listen_addresses='*' -c jit=off
`

// ExternalPostgresEntrypoint is the entrypoint of the database container.
// The password must be hex or otherwise free of quotes.
func ExternalPostgresEntrypoint() []string {
	return []string{"sh", "-c", externalPostgresScript}
}

// ExternalPostgresURL is the URL GPUStack is given for the database
// container at ip.
func ExternalPostgresURL(password, ip string) string {
	return fmt.Sprintf("postgresql://%s:%s@%s:%d/%s", ExternalPostgresRole, password, ip, ExternalPostgresPort, ExternalPostgresDatabase)
}

// ExternalPostgresPSQL is the command that runs query in the database as
// the superuser over the container's socket; its output is unaligned,
// tuples only, fields separated by a tab.
func ExternalPostgresPSQL(query string) []string {
	return []string{"psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", ExternalPostgresSocketDir, "-U", "postgres",
		"-d", ExternalPostgresDatabase, "-tAF", "\t", "-c", query}
}

// ExternalPostgresReady is the command that exits 0 once the database
// accepts TCP connections.
func ExternalPostgresReady() []string {
	return []string{"pg_isready", "-q", "-h", "127.0.0.1", "-p", fmt.Sprint(ExternalPostgresPort), "-d", ExternalPostgresDatabase, "-U", ExternalPostgresRole}
}

// ExternalPostgresRowsQuery counts the rows of every table of the public
// schema, one "table<TAB>count" line each, as `gpustack emulator rows` does.
const ExternalPostgresRowsQuery = `SELECT table_name, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM public.%I', table_name), false, true, '')))[1]::text
FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`

// ParseExternalPostgresRows decodes the output of ExternalPostgresRowsQuery.
func ParseExternalPostgresRows(out string) (map[string]int64, error) {
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
