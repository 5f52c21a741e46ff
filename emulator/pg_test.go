package emulator

import (
	"context"
	"database/sql"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const hostPGBin = "/usr/lib/postgresql/15/bin"

// needHostPG skips without PostgreSQL 15's programs on the host.
func needHostPG(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(hostPGBin, "postgres")); err != nil {
		t.Skipf("no PostgreSQL at %s (apt-get install postgresql-15 runs these tests)", hostPGBin)
	}
}

// pgTestDir is a data dir PostgreSQL's uid 9999 can reach, and the env
// that points the emulator at the host's PostgreSQL and a private socket.
func pgTestDir(t *testing.T) (string, map[string]string) {
	t.Helper()
	needHostPG(t)
	root, err := os.MkdirTemp("", "gpustack-emu-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "data")
	sock := filepath.Join(root, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{EnvPostgresBin: hostPGBin, EnvPostgresSocketDir: sock, "GPUSTACK_DATABASE_PORT": freePort(t)}
	if os.Geteuid() == 0 {
		// initdb needs a passwd entry: the host's postgres user stands in
		// for the image's gpustack (9999).
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root without a postgres user: %v", err)
		}
		env[EnvPostgresUID] = u.Uid + ":" + u.Gid
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(sock, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return data, env
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startTestPG initializes and starts a cluster in a fresh data dir.
func startTestPG(t *testing.T) (*postgres, *sql.DB) {
	t.Helper()
	dir, env := pgTestDir(t)
	getenv := func(k string) string { return env[k] }
	var port int
	for _, c := range env["GPUSTACK_DATABASE_PORT"] {
		port = port*10 + int(c-'0')
	}
	p, err := newPostgres(getenv, dir, filepath.Join(dir, "log"), port, newLogger(&syncBuffer{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := p.start(context.Background(), getenv)
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "log", "postgresql", pgLogFile))
		t.Fatalf("%v\n%s", err, b)
	}
	t.Cleanup(func() {
		db.Close()
		if err := p.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return p, db
}

func TestPGChainOrder(t *testing.T) {
	for i, r := range pgChain[1:] {
		if r.Down != pgChain[i].ID {
			t.Errorf("%s: down %s, want %s", r.ID, r.Down, pgChain[i].ID)
		}
	}
	if len(pgChain) != 23 {
		t.Errorf("%d steps, want the base and revisions 11–32", len(pgChain))
	}
	for _, name := range []string{"v2.0.0", "v2.0.3", "v2.1.0", "v2.1.2", "v2.2.0rc1", "v2.2.1", "v2.2.3"} {
		rel, err := ParseRelease(name)
		if err != nil {
			t.Fatal(err)
		}
		if c := pgChainFor(rel); len(c) == 0 || c[len(c)-1].ID != rel.Head() {
			t.Errorf("%s: chain does not end at %s", name, rel.Head())
		}
	}
}

// TestPGChain runs the whole chain on a real PostgreSQL, one release head
// after the other, and checks what the revisions add, drop and rename.
func TestPGChain(t *testing.T) {
	t.Parallel()
	_, db := startTestPG(t)
	ctx := context.Background()
	for _, name := range []string{"v2.0.0", "v2.0.2", "v2.1.0", "v2.1.2", "v2.2.0", "v2.2.3"} {
		rel, _ := ParseRelease(name)
		m := &pgMigrator{revs: pgChainFor(rel)}
		res, err := m.upgrade(ctx, db)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.to != rel.Head() {
			t.Fatalf("%s: at %s, want %s", name, res.to, rel.Head())
		}
	}
	s, err := pgSchema(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		table, col string
		want       bool
	}{
		{"principals", "name", true}, {"principals", "username", false}, {"users", "", false},
		{"model_usage_details", "completed", true}, {"model_route_targets", "overridden_model_name", true},
		{"model_route_targets", "provider_model_name", false}, {"models", "embedding_only", false},
		{"model_usages", "consumer_principal_kind", true}, {"usermodelroutelink", "", false},
		{"metered_usage_archive", "consumer_principal_kind", true}, {"workers", "worker_version", true},
	} {
		_, hasTable := s[c.table]
		got := hasTable && (c.col == "" || slices.Contains(s[c.table], c.col))
		if got != c.want {
			t.Errorf("%s.%s present=%v, want %v", c.table, c.col, got, c.want)
		}
	}
	var fks int
	if err := db.QueryRow("SELECT count(*) FROM pg_constraint WHERE conrelid = 'model_usages'::regclass AND contype = 'f'").Scan(&fks); err != nil || fks != 0 {
		t.Errorf("model_usages FKs after c4d7e8f9a0b1: %d %v", fks, err)
	}
	// Downgrade: an older release does not know the stamp.
	old, _ := ParseRelease("v2.1.2")
	_, err = (&pgMigrator{revs: pgChainFor(old)}).upgrade(ctx, db)
	if err == nil || err.Error() != "Can't locate revision identified by 'c4d7e8f9a0b1'" {
		t.Errorf("downgrade: %v", err)
	}
}

// TestPGFailRollsBack: a failure at any revision leaves the stamp and the
// schema as they were.
func TestPGFailRollsBack(t *testing.T) {
	t.Parallel()
	_, db := startTestPG(t)
	ctx := context.Background()
	v212, _ := ParseRelease("v2.1.2")
	if _, err := (&pgMigrator{revs: pgChainFor(v212)}).upgrade(ctx, db); err != nil {
		t.Fatal(err)
	}
	before, _ := pgSchema(ctx, db)
	v223, _ := ParseRelease("v2.2.3")
	_, err := (&pgMigrator{revs: pgChainFor(v223), failAt: "b2c3d4e5f6a7"}).upgrade(ctx, db)
	if err != errLockTimeout {
		t.Fatalf("err %v", err)
	}
	var rev string
	if err := db.QueryRow("SELECT version_num FROM alembic_version").Scan(&rev); err != nil || rev != "8ad0f94c92e8" {
		t.Errorf("stamp %q %v", rev, err)
	}
	after, _ := pgSchema(ctx, db)
	if len(after) != len(before) || after["principals"] != nil || after["metered_usage"] != nil {
		t.Errorf("schema changed: %d tables before, %d after", len(before), len(after))
	}
}

// TestPGGap5774: with the knob, b2c3d4e5f6a7 databases lack `completed`.
func TestPGGap5774(t *testing.T) {
	t.Parallel()
	_, db := startTestPG(t)
	ctx := context.Background()
	rel, _ := ParseRelease("v2.2.1")
	if _, err := (&pgMigrator{revs: pgChainFor(rel), opts: pgOptions{gap5774: true}}).upgrade(ctx, db); err != nil {
		t.Fatal(err)
	}
	s, _ := pgSchema(ctx, db)
	for _, tbl := range []string{"model_usage_details", "model_usage_details_archive"} {
		if s[tbl] == nil || slices.Contains(s[tbl], "completed") {
			t.Errorf("%s: %v", tbl, s[tbl])
		}
	}
	_, err := db.Exec("UPDATE model_usage_details SET completed = true WHERE false")
	if err == nil || !strings.Contains(pyPGError(err), `(psycopg.errors.UndefinedColumn) column "completed" of relation "model_usage_details" does not exist`) {
		t.Errorf("flush: %v", err)
	}
}
