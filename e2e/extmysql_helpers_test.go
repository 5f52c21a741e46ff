package e2e

import (
	"strings"
	"sync"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/emulator/image"
)

// An external MySQL for the tests of database_url=mysql://…: MariaDB 10.11
// in a container of the emulator's base image (see
// image.ExternalMySQLEntrypoint) on the default bridge network, without a
// published port. GPUStack reaches it at the container's bridge IP; the
// suite talks to it only through `docker exec` (the mysql client over the
// unix socket as root, who has no password there). The same image has
// mysqldump and mysql for the tool's backups.

// extMySQLContainers maps the URLs startExternalMySQL returned to their
// container names, for externalMySQL, externalMySQLRevision and
// externalMySQLRows.
var extMySQLContainers sync.Map

// startExternalMySQL starts an external MySQL (MariaDB) and returns the URL
// GPUStack is given: mysql://gpustack:<random hex>@<bridge
// IP>:3306/gpustack. The database gpustack is empty; the user gpustack
// (any host, that password) has all privileges on it and no others. The
// data dir lives in the container's /tmp; the container and its anonymous
// volumes are removed at cleanup. It calls needPostgres(t) first (the
// base image is the same).
func startExternalMySQL(t testing.TB) (url string) {
	t.Helper()
	url, name := startExternalDB(t, externalDB{
		what: "MySQL", prefix: "gsd-e2e-extmysql-", label: "external-mysql",
		passwordEnv: image.ExternalMySQLPasswordEnv, entrypoint: image.ExternalMySQLEntrypoint(),
		ready: image.ExternalMySQLReady(), url: image.ExternalMySQLURL,
	})
	extMySQLContainers.Store(url, name)
	t.Cleanup(func() { extMySQLContainers.Delete(url) })
	return url
}

// externalMySQL runs query (one or more statements) in the database of
// url (a URL from startExternalMySQL) as root, through exec in its
// container, and returns the mysql client's batch output (no column
// names, tab-separated, NULL as "NULL"), trimmed. An SQL error fails the
// test.
func externalMySQL(t testing.TB, url, query string) string {
	t.Helper()
	v, ok := extMySQLContainers.Load(url)
	if !ok {
		t.Fatal("externalMySQL: the URL is not one startExternalMySQL returned in this test")
	}
	return strings.TrimSpace(execIn(t, v.(string), image.ExternalMySQLClient(query)...))
}

// externalMySQLRevision returns the Alembic stamp of the external MySQL
// database, or "" when alembic_version does not exist (nothing migrated yet).
func externalMySQLRevision(t testing.TB, url string) string {
	t.Helper()
	return externalMySQL(t, url, image.ExternalMySQLRevisionQuery)
}

// externalMySQLRows counts the rows of every table of the external MySQL
// database, with the keys and values `gpustack emulator rows` prints.
func externalMySQLRows(t testing.TB, url string) map[string]int64 {
	t.Helper()
	counts, err := image.ParseExternalMySQLRows(externalMySQL(t, url, image.ExternalMySQLRowsQuery))
	if err != nil {
		t.Fatalf("external MySQL row counts: %v", err)
	}
	return counts
}

// TestExternalMySQLHelper checks the helper itself: an empty database, no
// stamp, and the user's password accepted over the bridge IP (the path
// GPUStack takes) while a wrong one is refused; mysqldump is there.
func TestExternalMySQLHelper(t *testing.T) {
	t.Parallel()
	url := startExternalMySQL(t)
	if rev := externalMySQLRevision(t, url); rev != "" {
		t.Errorf("revision of an empty database %q", rev)
	}
	if rows := externalMySQLRows(t, url); len(rows) != 0 {
		t.Errorf("rows of an empty database %v", rows)
	}
	v, _ := extMySQLContainers.Load(url)
	name := v.(string)
	userPw := strings.TrimPrefix(strings.SplitN(url, "@", 2)[0], "mysql://")
	user, pw, _ := strings.Cut(userPw, ":")
	host := strings.SplitN(strings.SplitN(url, "@", 2)[1], ":", 2)[0]
	login := func(pw string) (int, string) {
		return extDBExec(t, name, []string{"MYSQL_PWD=" + pw}, "mysql", "--no-defaults", "-h", host, "-u", user, "-N", "-B", "-e",
			"SELECT concat(current_user(), ' ', database()) FROM DUAL", "gpustack")
	}
	if code, out := login(pw); code != 0 || strings.TrimSpace(out) != "gpustack@% gpustack" {
		t.Errorf("password login over the bridge IP: exit %d: %q", code, out)
	}
	if code, out := login(pw + "x"); code == 0 || !strings.Contains(out, "Access denied") {
		t.Errorf("wrong password: exit %d: %q", code, out)
	}
	externalMySQL(t, url, "CREATE TABLE t (id INT); INSERT INTO t VALUES (1), (2)")
	if rows := externalMySQLRows(t, url); len(rows) != 1 || rows["t"] != 2 {
		t.Errorf("rows %v", rows)
	}
	if code, out := extDBExec(t, name, []string{"MYSQL_PWD=" + pw}, "mysqldump", "--no-defaults", "-h", host, "-u", user, "--single-transaction", "gpustack"); code != 0 || !strings.Contains(out, "CREATE TABLE `t`") {
		t.Errorf("mysqldump: exit %d: %q", code, out)
	}
}
