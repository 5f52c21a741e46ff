package emulator

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// EnvTestMySQL names a MySQL/MariaDB URL whose user may create databases,
// for the in-process MySQL tests; without it they start a MariaDB from the
// host's binaries (mariadbd, mariadb-install-db) when there are any, and
// skip otherwise, also with CI=true: the image tests
// (emulator/image TestV2ExternalMySQL) cover MySQL there.
const EnvTestMySQL = "GPUSTACK_EMULATOR_TEST_MYSQL_URL"

// externalMySQL returns the URL of a fresh, empty database on a MySQL
// server, for user ext_user with extPassword.
func externalMySQL(t *testing.T) string {
	t.Helper()
	admin := os.Getenv(EnvTestMySQL)
	if admin == "" {
		admin = hostMariaDB(t)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", EnvTestMySQL, err)
	}
	dsn, _ := mysqlDSN(u)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := make([]byte, 4)
	rand.Read(b)
	name := "emu_" + hex.EncodeToString(b)
	ctx := context.Background()
	for _, stmt := range []string{
		"CREATE DATABASE " + name + " CHARACTER SET utf8mb4",
		"CREATE USER IF NOT EXISTS 'ext_user'@'%' IDENTIFIED BY '" + extPassword + "'",
		"GRANT ALL ON " + name + ".* TO 'ext_user'@'%'",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() { db.ExecContext(context.Background(), "DROP DATABASE "+name) })
	return fmt.Sprintf("mysql://ext_user:%s@%s/%s", extPassword, u.Host, name)
}

// hostMariaDB starts a MariaDB server from the host's binaries in a temp
// dir, listening on 127.0.0.1, and returns a root URL; it skips without
// the binaries.
func hostMariaDB(t *testing.T) string {
	t.Helper()
	server, err := exec.LookPath("mariadbd")
	if err != nil {
		server, err = exec.LookPath("mysqld")
	}
	install, ierr := exec.LookPath("mariadb-install-db")
	if err != nil || ierr != nil {
		t.Skipf("no MariaDB server on this host (mariadbd, mariadb-install-db) and no %s: the image test TestV2ExternalMySQL covers MySQL", EnvTestMySQL)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(install, "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := freePort(t)
	cmd := exec.Command(server, "--no-defaults", "--datadir="+data, "--socket="+filepath.Join(dir, "sock"), "--port="+port,
		"--bind-address=127.0.0.1", "--skip-name-resolve", "--innodb-buffer-pool-size=32M")
	if os.Geteuid() == 0 {
		cmd.Args = append(cmd.Args, "--user=root")
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	root := "mysql://root@127.0.0.1:" + port + "/mysql"
	u, _ := url.Parse(root)
	dsn, _ := mysqlDSN(u)
	db, _ := sql.Open("mysql", dsn)
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for db.Ping() != nil {
		if time.Now().After(deadline) {
			t.Fatal("host MariaDB did not answer within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	return root
}

// TestExternalMySQL: v2.1.2 fresh on MySQL, seed, rows and sql with the
// same JSON, an injected failure that leaves a half-applied revision and
// the previous stamp, the rerun failing with pymysql's "Duplicate column
// name", then (after the half-applied columns are dropped by hand) the
// upgrade to v2.2.3 through the rest of the chain.
func TestExternalMySQL(t *testing.T) {
	t.Parallel()
	url := externalMySQL(t)
	dir := t.TempDir()
	env := map[string]string{EnvDatabaseURL: url}

	r := startRun(t, "v2.0.3", dir, map[string]string{EnvDatabaseURL: url, EnvFailMigration: "2aed534bd7b2"}, "--debug")
	if r.port != "" || r.code != 0 || !strings.Contains(r.stdout.String(), "Error running server: Database migration failed: (pymysql.err.OperationalError) (1205, 'Lock wait timeout exceeded; try restarting transaction')") {
		t.Fatalf("injected failure: port %q exit %d:\n%s", r.port, r.code, r.stdout)
	}
	noPassword(t, r)
	noEmbedded(t, dir)
	for _, want := range []string{"Using the external database mysql://ext_user:xxxxx@", "Context impl MySQLImpl.", "Running upgrade e30134bd18dc -> 2aed534bd7b2"} {
		if want == "Running upgrade e30134bd18dc -> 2aed534bd7b2" {
			if strings.Contains(r.stdout.String(), want) {
				t.Errorf("the failing revision was logged as running")
			}
			continue
		}
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, r.stdout)
		}
	}
	if rev := extStamp(t, url); rev != "e30134bd18dc" {
		t.Errorf("stamp %s after the failure, want the previous revision", rev)
	}
	var cols []map[string]any
	extCmd(t, url, &cols, "sql", "SELECT column_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'workers' AND column_name IN ('proxy_mode', 'advertise_address') ORDER BY 1")
	if fmt.Sprint(cols) != "[map[c:advertise_address] map[c:proxy_mode]]" {
		t.Errorf("half-applied columns %v", cols)
	}

	// The rerun: #3202.
	r = startRun(t, "v2.1.2", dir, env)
	want := `RuntimeError: Database migration failed: (pymysql.err.OperationalError) (1060, "Duplicate column name 'proxy_mode'")`
	if r.port != "" || r.code != 1 || !strings.Contains(r.stdout.String(), want) {
		t.Fatalf("rerun: port %q exit %d, want 1 and %q:\n%s", r.port, r.code, want, r.stdout)
	}
	noPassword(t, r)

	// The fix by hand: drop what the failed run left, then start again.
	var half []map[string]any
	extCmd(t, url, &half, "sql", "SELECT table_name AS t, column_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND column_name IN ('proxy_mode', 'advertise_address', 'worker_advertise_address', 'backend', 'backend_version', 'server_url', 'worker_config', 'is_default') AND table_name IN ('workers', 'model_instances', 'clusters')")
	for _, h := range half {
		var res map[string]int
		extCmd(t, url, &res, "sql", fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", h["t"], h["c"]))
	}
	r = startRun(t, "v2.1.2", dir, env)
	serving(t, r, "v2.1.2")
	if rev := extStamp(t, url); rev != "8ad0f94c92e8" {
		t.Errorf("stamp %s", rev)
	}
	var counts map[string]int
	extCmd(t, url, &counts, "seed", "--models", "2", "--instances", "3", "--users", "1")
	if counts["models"] != 2 || counts["model_instances"] != 3 || counts["users"] != 2 || counts["alembic_version"] != 1 {
		t.Errorf("after seed: %v", counts)
	}
	var n []map[string]any
	extCmd(t, url, &n, "sql", "SELECT count(*) AS n, max(created_at) AS at FROM models")
	if len(n) != 1 || n[0]["n"] != float64(2) {
		t.Errorf("sql: %v (want a JSON number, as on PostgreSQL)", n)
	}
	if code := r.stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(dir, BootstrapVersion)); err != nil || strings.TrimSpace(string(b)) != "v2.0.3" {
		t.Errorf("bootstrap_version: %q %v (written by the first run's base step)", b, err)
	}

	r = startRun(t, "v2.2.3", dir, env)
	serving(t, r, "v2.2.3")
	if rev := extStamp(t, url); rev != "c4d7e8f9a0b1" {
		t.Errorf("stamp after upgrade %s", rev)
	}
	counts = nil
	extCmd(t, url, &counts, "rows")
	// The seeded user has no password: no user_passwords row, as on PostgreSQL.
	if _, ok := counts["users"]; ok || counts["models"] != 2 || counts["model_instances"] != 3 || counts["principals"] != 4 || counts["user_passwords"] != 1 {
		t.Errorf("after upgrade: %v", counts)
	}
	extCmd(t, url, &counts, "seed", "--models", "1", "--users", "1")
	if counts["models"] != 3 || counts["principals"] != 5 {
		t.Errorf("seed on v2.2.3: %v", counts)
	}
	r.stop()
	noPassword(t, r)
	noEmbedded(t, dir)

	r = startRun(t, "v2.1.2", dir, env)
	if r.port != "" || r.code != 1 || !strings.Contains(r.stdout.String(), "Can't locate revision identified by 'c4d7e8f9a0b1'") {
		t.Errorf("downgrade: port %q exit %d:\n%s", r.port, r.code, r.stdout)
	}
}

// TestExternalMySQLFresh223: a fresh v2.2.3 install runs the whole chain in
// MySQL dialect and serves.
func TestExternalMySQLFresh223(t *testing.T) {
	t.Parallel()
	url := externalMySQL(t)
	dir := t.TempDir()
	r := startRun(t, "v2.2.3", dir, map[string]string{EnvDatabaseURL: url})
	serving(t, r, "v2.2.3")
	if rev := extStamp(t, url); rev != "c4d7e8f9a0b1" {
		t.Errorf("stamp %s", rev)
	}
	var counts map[string]int
	extCmd(t, url, &counts, "rows")
	if counts["principals"] != 3 || counts["user_passwords"] != 1 || counts["model_usage_details"] != 0 {
		t.Errorf("fresh v2.2.3: %v", counts)
	}
	r.stop()
	noPassword(t, r)
}

// TestExternalMySQLUnreachable: the bounded wait and pymysql's message,
// without the password. Not parallel: it shortens externalWait.
func TestExternalMySQLUnreachable(t *testing.T) {
	saved := externalWait
	externalWait = time.Second
	defer func() { externalWait = saved }()
	port := freePort(t)
	dir := t.TempDir()
	r := startRun(t, "v2.2.3", dir, map[string]string{EnvDatabaseURL: "mysql://ext_user:" + extPassword + "@127.0.0.1:" + port + "/gs"})
	want := `gpustack.cmd.start - ERROR - Error running server: (pymysql.err.OperationalError) (2003, "Can't connect to MySQL server on '127.0.0.1:` + port + `'`
	if r.port != "" || r.code != 1 || !strings.Contains(r.stdout.String(), want) {
		t.Errorf("port %q exit %d, want 1 and %q:\n%s", r.port, r.code, want, r.stdout)
	}
	noPassword(t, r)
	noEmbedded(t, dir)
}

func TestParseMySQLURL(t *testing.T) {
	ext, err := parseDatabaseURL("mysql://gs:p%40ss@db.example/gpustack")
	if err != nil {
		t.Fatal(err)
	}
	if !ext.mysql() || ext.password != "p@ss" || ext.redacted != "mysql://gs:xxxxx@db.example/gpustack" || ext.host != "db.example:3306" {
		t.Errorf("%+v", ext)
	}
	if !strings.HasPrefix(ext.dsn, "gs:p@ss@tcp(db.example:3306)/gpustack?") || !strings.Contains(ext.dsn, "parseTime=true") {
		t.Errorf("dsn %q", ext.dsn)
	}
}

func TestPyMySQLError(t *testing.T) {
	for _, c := range []struct {
		n    uint16
		msg  string
		want string
	}{
		{1060, "Duplicate column name 'x'", `(pymysql.err.OperationalError) (1060, "Duplicate column name 'x'")`},
		{1205, "Lock wait timeout exceeded; try restarting transaction", `(pymysql.err.OperationalError) (1205, 'Lock wait timeout exceeded; try restarting transaction')`},
		{1146, "Table 'gs.users' doesn't exist", `(pymysql.err.ProgrammingError) (1146, "Table 'gs.users' doesn't exist")`},
		{1062, "Duplicate entry 'a' for key 'b'", `(pymysql.err.IntegrityError) (1062, "Duplicate entry 'a' for key 'b'")`},
	} {
		if got := pyPGError(fmt.Errorf("wrapped: %w", &mysql.MySQLError{Number: c.n, Message: c.msg})); got != c.want {
			t.Errorf("%d: %s, want %s", c.n, got, c.want)
		}
	}
}
