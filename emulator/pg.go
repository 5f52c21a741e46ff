package emulator

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lib/pq"
)

// PostgresUID is the uid and gid the embedded PostgreSQL runs as, as in
// GPUStack's v2 image (facts §7).
const PostgresUID = 9999

// Files and directories of the v2 data dir (facts §2.1).
const (
	PostgresDataDir    = "postgresql/data" // PGDATA, relative to the data dir
	postgresDataDirOld = "postgres/data"   // v2.0.0's spelling (#3676)
	PostgresPassFile   = "postgres_root_pass"
	BootstrapVersion   = "bootstrap_version"
	MigrationDoneFile  = "run/state_migration_done"
	DefaultDBPort      = 5432
	pgDatabase         = "gpustack"
	pgSuperuser        = "root"
	pgLogFile          = "postgresql.log"
)

// EnvPostgresBin names the directory of PostgreSQL's programs; by default
// the highest /usr/lib/postgresql/<major>/bin is used.
const EnvPostgresBin = "GPUSTACK_EMULATOR_PG_BIN"

// EnvPostgresSocketDir overrides the unix socket directory (default
// /run/postgresql, libpq's default on Debian). Tests on a host use it.
const EnvPostgresSocketDir = "GPUSTACK_EMULATOR_PG_SOCKET_DIR"

// EnvPostgresUID overrides the uid (and gid) PostgreSQL runs as; initdb
// needs a passwd entry for it. Tests on a host without user 9999 use it.
const EnvPostgresUID = "GPUSTACK_EMULATOR_PG_UID"

// postgres is the embedded PostgreSQL cluster of one emulator process.
type postgres struct {
	binDir    string
	pgdata    string
	dataDir   string
	logDir    string // <log-dir>/postgresql
	socketDir string
	port      int
	cred      *syscall.Credential // nil when the emulator is not root
	log       *logger
	echo      io.Writer // the container log, for PostgreSQL's own lines

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	ready   chan struct{}
	once    sync.Once
}

// findPostgresBin returns the directory of postgres, initdb and pg_ctl.
func findPostgresBin(getenv func(string) string) (string, error) {
	if d := getenv(EnvPostgresBin); d != "" {
		return d, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		return "", errors.New("no PostgreSQL under /usr/lib/postgresql/*/bin")
	}
	major := func(p string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return n
	}
	sort.Slice(matches, func(i, j int) bool { return major(matches[i]) > major(matches[j]) })
	return filepath.Dir(matches[0]), nil
}

func newPostgres(getenv func(string) string, dataDir, logDir string, port int, lg *logger, echo io.Writer) (*postgres, error) {
	bin, err := findPostgresBin(getenv)
	if err != nil {
		return nil, err
	}
	sock := getenv(EnvPostgresSocketDir)
	if sock == "" {
		sock = "/run/postgresql"
	}
	p := &postgres{
		binDir: bin, dataDir: dataDir, pgdata: filepath.Join(dataDir, PostgresDataDir),
		logDir: filepath.Join(logDir, "postgresql"), socketDir: sock, port: port, log: lg, echo: echo,
	}
	if os.Geteuid() == 0 {
		p.cred = &syscall.Credential{Uid: PostgresUID, Gid: PostgresUID}
		if v := getenv(EnvPostgresUID); v != "" {
			uid, gid, ok := strings.Cut(v, ":")
			u, err1 := strconv.ParseUint(uid, 10, 32)
			g, err2 := strconv.ParseUint(gid, 10, 32)
			if !ok || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%s=%q: want UID:GID", EnvPostgresUID, v)
			}
			p.cred = &syscall.Credential{Uid: uint32(u), Gid: uint32(g)}
		}
	}
	return p, nil
}

// locate picks PGDATA the way the release's prerun does: v2.0.0 uses
// postgres/data; v2.0.1+ moves that to postgresql/data when the latter is
// absent, and warns and uses postgresql/ when both exist (#3676).
func (p *postgres) locate(rel Release) error {
	oldDir := filepath.Join(p.dataDir, postgresDataDirOld)
	if !rel.atLeast(2, 0, 1) {
		p.pgdata = oldDir
		return nil
	}
	_, errOld := os.Stat(oldDir)
	_, errNew := os.Stat(p.pgdata)
	switch {
	case errOld == nil && os.IsNotExist(errNew):
		if err := os.MkdirAll(filepath.Dir(p.pgdata), 0o755); err != nil {
			return fmt.Errorf("move %s: %w", oldDir, err)
		}
		if err := os.Rename(oldDir, p.pgdata); err != nil {
			return fmt.Errorf("move %s: %w", oldDir, err)
		}
		p.log.log(logPrerun, levelInfo, "Moved PostgreSQL data from %s to %s.", oldDir, p.pgdata)
	case errOld == nil && errNew == nil:
		p.log.log(logPrerun, levelWarning, "Both %s and %s exist; using %s.", oldDir, p.pgdata, p.pgdata)
	}
	return nil
}

// initialized reports whether PGDATA holds a cluster.
func (p *postgres) initialized() bool {
	_, err := os.Stat(filepath.Join(p.pgdata, "PG_VERSION"))
	return err == nil
}

func (p *postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.binDir, name), args...)
	cmd.Env = []string{"PATH=" + p.binDir + ":/usr/bin:/bin", "LANG=C", "LC_ALL=C", "TZ=UTC"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	return cmd
}

func (p *postgres) chown(path string) error {
	if p.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// rootPassword reads postgres_root_pass, writing it first (POSTGRES_PASSWORD
// or 16 random characters) when absent.
func rootPassword(dataDir string, getenv func(string) string) (string, error) {
	path := filepath.Join(dataDir, PostgresPassFile)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	pass := getenv("POSTGRES_PASSWORD")
	if pass == "" {
		const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		b := make([]byte, 16)
		for i := range b {
			n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			if err != nil {
				return "", fmt.Errorf("random password: %w", err)
			}
			b[i] = alphabet[n.Int64()]
		}
		pass = string(b)
	}
	if err := os.WriteFile(path, []byte(pass), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", PostgresPassFile, err)
	}
	return pass, nil
}

const pgHBA = `# gpustack-deploy emulator: trust root on loopback and the socket, scram-sha-256 otherwise.
local   all   root                   trust
host    all   root   127.0.0.1/32    trust
host    all   root   ::1/128         trust
local   all   all                    scram-sha-256
host    all   all    0.0.0.0/0       scram-sha-256
host    all   all    ::/0            scram-sha-256
`

// initdb creates the cluster: PGDATA mode 0700 owned by 9999, superuser
// root with the password of postgres_root_pass, the emulator's pg_hba.conf.
func (p *postgres) initdb(ctx context.Context, password string) error {
	if err := os.MkdirAll(filepath.Dir(p.pgdata), 0o755); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if _, err := os.Stat(p.pgdata); os.IsNotExist(err) {
		if err := os.Mkdir(p.pgdata, 0o700); err != nil {
			return fmt.Errorf("initdb: %w", err)
		}
		if err := p.chown(p.pgdata); err != nil {
			return fmt.Errorf("initdb: %w", err)
		}
	}
	pwfile := filepath.Join(filepath.Dir(p.pgdata), ".initdb-pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	defer os.Remove(pwfile)
	if err := p.chown(pwfile); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	cmd := p.command("initdb", "-D", p.pgdata, "-U", pgSuperuser, "--pwfile="+pwfile, "-E", "UTF8", "--no-locale",
		"--auth-local=trust", "--auth-host=scram-sha-256")
	out, err := cmd.CombinedOutput()
	p.writeLog(out)
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, lastLines(string(out), 3))
	}
	if err := os.WriteFile(filepath.Join(p.pgdata, "pg_hba.conf"), []byte(pgHBA), 0o600); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	conf := "\n# gpustack-deploy emulator (GPUStack's image listens on '*')\nlisten_addresses = '127.0.0.1'\njit = off\n"
	f, err := os.OpenFile(filepath.Join(p.pgdata, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	return p.chown(filepath.Join(p.pgdata, "pg_hba.conf"))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// writeLog appends output of PostgreSQL's programs to its log file.
func (p *postgres) writeLog(b []byte) {
	f, err := os.OpenFile(filepath.Join(p.logDir, pgLogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	f.Write(b)
	f.Close()
}

// start runs postgres as a child and waits until it accepts connections
// and the gpustack database exists. PostgreSQL's own complaints (wrong
// owner or mode of PGDATA, #3739) reach the container log.
func (p *postgres) start(ctx context.Context, getenv func(string) string) (*sql.DB, error) {
	if err := os.MkdirAll(p.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("postgres log dir: %w", err)
	}
	if !p.initialized() {
		pass, err := rootPassword(p.dataDir, getenv)
		if err != nil {
			return nil, err
		}
		if err := p.initdb(ctx, pass); err != nil {
			return nil, err
		}
	} else if _, err := rootPassword(p.dataDir, getenv); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.socketDir, 0o775); err != nil {
		return nil, fmt.Errorf("postgres socket dir: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(p.logDir, pgLogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("postgres log: %w", err)
	}
	pr, pw := io.Pipe()
	p.cmd = p.command("postgres", "-D", p.pgdata, "-p", strconv.Itoa(p.port), "-k", p.socketDir,
		"-c", "listen_addresses=127.0.0.1")
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	p.ready = make(chan struct{})
	p.exited = make(chan struct{})
	go p.tee(pr, logf)
	if err := p.cmd.Start(); err != nil {
		pw.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	db, err := p.waitReady(ctx, 60*time.Second)
	if err != nil {
		p.stop()
		return nil, err
	}
	p.once.Do(func() { close(p.ready) })
	return db, nil
}

// tee copies PostgreSQL's output to its log file (GPUStack's image logs to
// log/postgresql only). The container log gets what explains a failed
// start — every line but routine LOG ones until PostgreSQL is ready — and
// FATAL and PANIC lines afterwards.
func (p *postgres) tee(r io.Reader, logf *os.File) {
	defer logf.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(logf, line)
		echo := !strings.Contains(line, "] LOG:  ")
		select {
		case <-p.ready:
			echo = strings.Contains(line, "FATAL:") || strings.Contains(line, "PANIC:")
		default:
		}
		if echo && p.echo != nil {
			fmt.Fprintln(p.echo, line)
		}
	}
	io.Copy(io.Discard, r)
}

// DSN is the connection string of the embedded database for root over TCP.
func pgDSN(port int, dbname string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable connect_timeout=5", port, pgSuperuser, dbname)
}

func (p *postgres) waitReady(ctx context.Context, timeout time.Duration) (*sql.DB, error) {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("PostgreSQL exited before accepting connections (%v); see %s", p.waitErr, filepath.Join(p.logDir, pgLogFile))
		default:
		}
		admin, err := sql.Open("postgres", pgDSN(p.port, "postgres"))
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		err = admin.PingContext(ctx)
		if err == nil {
			err = ensureDatabase(ctx, admin)
			admin.Close()
			if err != nil {
				return nil, err
			}
			db, err := sql.Open("postgres", pgDSN(p.port, pgDatabase))
			if err != nil {
				return nil, fmt.Errorf("postgres: %w", err)
			}
			db.SetMaxOpenConns(4)
			return db, nil
		}
		admin.Close()
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("PostgreSQL not ready after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.exited:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ensureDatabase(ctx context.Context, admin *sql.DB) error {
	var n int
	if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", pgDatabase).Scan(&n); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pgDatabase+" OWNER "+pgSuperuser); err != nil {
		return fmt.Errorf("create database %s: %w", pgDatabase, err)
	}
	return nil
}

// stop shuts PostgreSQL down with `pg_ctl stop -m fast` and waits, so that
// pg_control says "shut down"; a postgres that does not stop in time gets
// SIGQUIT (immediate shutdown).
func (p *postgres) stop() error {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	out, err := p.command("pg_ctl", "stop", "-D", p.pgdata, "-m", "fast", "-w", "-t", "8").CombinedOutput()
	p.writeLog(out)
	select {
	case <-p.exited:
	case <-time.After(9 * time.Second):
		p.cmd.Process.Signal(syscall.SIGQUIT)
		<-p.exited
		return fmt.Errorf("postgres did not stop in time (pg_ctl: %v %s)", err, strings.TrimSpace(string(out)))
	}
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// pyPGError renders a PostgreSQL error the way GPUStack's log shows the
// DBAPI exception: "(psycopg.errors.UndefinedColumn) column … does not exist";
// a MySQL error as pymysql's (pyMySQLError).
func pyPGError(err error) string {
	if me, ok := asMySQLError(err); ok {
		return pyMySQLError(me)
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		class, ok := pgErrorClasses[string(pe.Code)]
		if !ok {
			class = "DatabaseError"
		}
		return fmt.Sprintf("(psycopg.errors.%s) %s", class, pe.Message)
	}
	return err.Error()
}

var pgErrorClasses = map[string]string{
	"42703": "UndefinedColumn", "42P01": "UndefinedTable", "42P07": "DuplicateTable", "42701": "DuplicateColumn",
	"42710": "DuplicateObject", "23505": "UniqueViolation", "23502": "NotNullViolation", "23503": "ForeignKeyViolation",
	"55P03": "LockNotAvailable", "57014": "QueryCanceled", "22P02": "InvalidTextRepresentation", "42804": "DatatypeMismatch",
	"55P04": "UnsafeNewEnumValueUsage",
}

// pgPortOf reads the port of a running cluster from postmaster.pid, for
// the `gpustack emulator` subcommands.
func pgPortOf(dataDir string) (int, error) {
	var lastErr error
	for _, d := range []string{PostgresDataDir, postgresDataDirOld} {
		b, err := os.ReadFile(filepath.Join(dataDir, d, "postmaster.pid"))
		if err != nil {
			lastErr = err
			continue
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) < 4 {
			return 0, fmt.Errorf("postmaster.pid in %s: too short", d)
		}
		port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
		if err != nil {
			return 0, fmt.Errorf("postmaster.pid in %s: port: %w", d, err)
		}
		return port, nil
	}
	return 0, fmt.Errorf("PostgreSQL is not running: %w", lastErr)
}
