package emulator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// EnvDatabaseURL is GPUStack's environment variable for --database-url.
const EnvDatabaseURL = "GPUSTACK_DATABASE_URL"

// externalWait bounds the wait for an external database to accept
// connections at start-up.
var externalWait = 30 * time.Second

// externalDB is a parsed --database-url of scheme postgresql or mysql.
type externalDB struct {
	driver   string // "postgres" (lib/pq) or "mysql" (go-sql-driver/mysql)
	dsn      string // for the driver; lib/pq's with sslmode=disable unless the URL says otherwise
	password string // to mask in logs; "" without one
	redacted string // the URL with its password replaced by xxxxx
	host     string // host:port, for MySQL's connection error
}

// mysql: the database is MySQL (MariaDB in the tests).
func (e *externalDB) mysql() bool { return e.driver == "mysql" }

// parseDatabaseURL accepts postgresql:// (and postgres://) and mysql://
// URLs; any other scheme fails as GPUStack's init_database_url does.
func parseDatabaseURL(raw string) (*externalDB, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		scheme = "" // the text may hold a password: not repeated
	}
	switch strings.ToLower(scheme) {
	case "postgresql", "postgres", "mysql":
	default:
		//lint:ignore ST1005 GPUStack's own message, matched by log readers.
		return nil, fmt.Errorf("Unsupported database scheme: %s", scheme)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL, password included.
		return nil, errors.New("invalid --database-url: cannot parse it as a URL")
	}
	ext := &externalDB{driver: "postgres"}
	if u.User != nil {
		ext.password, _ = u.User.Password()
	}
	ext.redacted = u.Redacted()
	if strings.EqualFold(scheme, "mysql") {
		ext.driver = "mysql"
		ext.dsn, ext.host = mysqlDSN(u)
		return ext, nil
	}
	q := u.Query()
	if q.Get("sslmode") == "" {
		// libpq (psycopg) defaults to prefer; lib/pq to require.
		q.Set("sslmode", "disable")
	}
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", "5")
	}
	u.Scheme = "postgres"
	u.RawQuery = q.Encode()
	ext.dsn = u.String()
	return ext, nil
}

// mask replaces the password in s.
func (e *externalDB) mask(s string) string {
	if e == nil || e.password == "" {
		return s
	}
	s = strings.ReplaceAll(s, e.password, "***")
	if esc := url.QueryEscape(e.password); esc != e.password {
		s = strings.ReplaceAll(s, esc, "***")
	}
	return s
}

// open connects and waits until the database answers, for at most wait.
func (e *externalDB) open(ctx context.Context, wait time.Duration) (*sql.DB, error) {
	db, err := sql.Open(e.driver, e.dsn)
	if err != nil {
		return nil, errors.New(e.mask(err.Error()))
	}
	db.SetMaxOpenConns(4)
	deadline := time.Now().Add(wait)
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return db, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			db.Close()
			if e.mysql() {
				return nil, fmt.Errorf(`(pymysql.err.OperationalError) (2003, "Can't connect to MySQL server on '%s' (%s)")`, e.host, e.mask(err.Error()))
			}
			return nil, fmt.Errorf("(psycopg.OperationalError) connection to %s failed after %s: %s", e.mask(e.redacted), wait, e.mask(err.Error()))
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// runStartExternal is the v2 start-up with --database-url: no embedded
// PostgreSQL (no initdb, postgresql/ or postgres_root_pass), no data
// migration (prerun enables it only without --database-url, facts §3.1);
// the chain migrates the external database as it does the embedded one.
func runStartExternal(ctx context.Context, id identity, opts startOptions, f faults, lg *logger) int {
	rel := id.release
	ext, err := parseDatabaseURL(opts.databaseURL)
	if err != nil {
		return reportStartError(lg, rel, err.Error())
	}
	lg.mask = ext.mask
	if err := os.MkdirAll(opts.dataDir, 0o755); err != nil {
		lg.log(logEmulator, levelError, "data dir: %v", err)
		return 1
	}
	lg.log(logEmulator, levelInfo, "Using the external database %s.", ext.redacted)
	db, err := ext.open(ctx, externalWait)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		return reportStartError(lg, rel, err.Error())
	}
	s := &server{id: id, opts: opts, faults: f, log: lg, db: db, external: true, mysql: ext.mysql(), startedAt: time.Now().UTC()}
	if err := s.prepareV2(ctx); err != nil {
		code := reportFailure(lg, rel, err)
		if cerr := s.close(); cerr != nil {
			lg.log(logEmulator, levelError, "%v", cerr)
		}
		return code
	}
	return s.serve(ctx)
}

// reportStartError logs an error raised before the migration the way
// start.py does ("Error running server: …", "Server has shut down.") and
// returns the era's exit code: 1 from v2.1.1 (sys.exit(1)), 0 before.
func reportStartError(lg *logger, rel Release, msg string) int {
	lg.log(logStart, levelError, "Error running server: %s", msg)
	lg.log(logStart, levelInfo, "Server has shut down.")
	if rel.failureEra() == eraTraceback {
		return 1
	}
	return 0
}

// databaseURLOf finds the database URL of the emulator subcommands: the
// flag, then $GPUSTACK_DATABASE_URL, then --database-url among the
// arguments of PID 1 when that is `gpustack start` (the container's
// server; its env reaches `docker exec` anyway).
func databaseURLOf(flagValue string, getenv func(string) string, cmdline func() ([]byte, error)) string {
	if flagValue != "" {
		return flagValue
	}
	if v := getenv(EnvDatabaseURL); v != "" {
		return v
	}
	if cmdline == nil {
		return ""
	}
	b, err := cmdline()
	if err != nil {
		return ""
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	isStart := false
	for i, a := range args {
		if a == "start" {
			isStart = true
		}
		if !isStart {
			continue
		}
		if v, ok := strings.CutPrefix(a, "--database-url="); ok {
			return v
		}
		if a == "--database-url" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func procOneCmdline() ([]byte, error) { return os.ReadFile("/proc/1/cmdline") }
