package emulator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// server is an emulator that has migrated and is ready to serve.
type server struct {
	id         identity
	opts       startOptions
	faults     faults
	log        *logger
	db         *sql.DB
	revision   string
	cacheFiles int
	cacheBytes int64
	startedAt  time.Time
	// listening, if set, receives the bound address once the port is open.
	listening chan<- string
	// v2: the embedded PostgreSQL, stopped after the database is closed.
	pg *postgres
	// flushColumnGap: the release's code writes model_usage_details.completed
	// but the table lacks it (#5774); every usage flush fails.
	flushColumnGap bool
	// external: the database is --database-url's; closing it is all.
	external bool
	// mysql: the external database is MySQL: the chain runs in MySQL
	// dialect, without transactional DDL.
	mysql bool
	// cluster: the v2 worker registry and its grace-period loop.
	cluster *clusterServer
}

// close closes the database as a clean shutdown does: SQLite checkpoints
// its WAL; the embedded PostgreSQL is shut down with pg_ctl stop -m fast.
func (s *server) close() error {
	if s.external {
		return s.db.Close()
	}
	if s.pg == nil {
		return closeDB(s.db)
	}
	err := s.db.Close()
	if perr := s.pg.stop(); err == nil {
		err = perr
	}
	return err
}

// abort closes after a crash: SQLite's WAL is left as it is; the embedded
// PostgreSQL is still shut down cleanly, as s6 does when the container ends.
func (s *server) abort() {
	if s.pg == nil && !s.external {
		s.db.Close()
		return
	}
	s.close()
}

// startError is a start-up failure the real server logs and swallows.
type startError struct {
	migration bool // wrapped as "Database migration failed" from v0.7.0
	cause     string
}

func (e *startError) Error() string { return e.cause }

const startUsage = "usage: gpustack start [-h] [--config-file CONFIG_FILE] [-d] [--data-dir DATA_DIR] [--port PORT] [--token TOKEN] ..."

// runStart is `gpustack start`: the exit code is 0 after a failed start,
// as in every SQLite-era release.
func runStart(ctx context.Context, id identity, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	opts, err := parseStartFlags(args, getenv, id.release)
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "%s\ngpustack: error: %s\n", startUsage, ue.msg)
			return 2
		}
		fmt.Fprintf(stderr, "gpustack: %v\n", err)
		return 2
	}
	f, err := faultsFromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "gpustack emulator: %v\n", err)
		return 2
	}
	lg := newLogger(stdout)
	if id.release.V2() && opts.serverURL != "" {
		return runWorker(ctx, id, opts, f, lg)
	}
	if id.release.V2() {
		return runStartV2(ctx, id, opts, f, lg, getenv, stderr)
	}
	if id.release.logsVersionAtStart() {
		lg.log(logStart, levelInfo, "GPUStack version: %s (%s)", id.release.Version(), id.commit)
	}
	if f.startupDelay > 0 {
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(f.startupDelay):
		}
	}
	s, err := boot(ctx, id, opts, f, lg)
	if err != nil {
		return reportFailure(lg, id.release, err)
	}
	return s.serve(ctx)
}

// reportFailure logs a failed start in the release's era (facts §3.1) and
// returns the process exit code: 0 (the error is swallowed) before v2.1.1,
// 1 from v2.1.1.
func reportFailure(lg *logger, rel Release, err error) int {
	msg := err.Error()
	var se *startError
	era := rel.failureEra()
	if errors.As(err, &se) && se.migration && (era == eraWrapped || era == eraTraceback) {
		msg = "Database migration failed: " + se.cause
	}
	switch era {
	case eraCritical:
		lg.log(logStart, levelCrit, "%s", msg)
	case eraTraceback:
		lg.log(logStart, levelError, "%s", msg)
		lg.raw("Traceback (most recent call last):\n"+
			"  File \"/usr/local/lib/python3.11/dist-packages/gpustack/cmd/start.py\", line 600, in run\n"+
			"    asyncio.run(server.start())\n"+
			"  File \"/usr/local/lib/python3.11/dist-packages/gpustack/server/server.py\", line 120, in start\n"+
			"    self._run_migrations()\n"+
			"  File \"/usr/local/lib/python3.11/dist-packages/gpustack/server/server.py\", line 190, in _run_migrations\n"+
			"    raise RuntimeError(f\"Database migration failed: {e}\") from e\n"+
			"RuntimeError: %s\n", msg)
		return 1
	default:
		lg.log(logStart, levelError, "Error running server: %s", msg)
		lg.log(logStart, levelInfo, "Server has shut down.")
	}
	return 0
}

// boot runs the start-up sequence up to the point where uvicorn would start.
func boot(ctx context.Context, id identity, opts startOptions, f faults, lg *logger) (*server, error) {
	rel := id.release
	lg.log(logServer, levelInfo, "Running database migration.")
	if err := os.MkdirAll(opts.dataDir, 0o755); err != nil {
		return nil, &startError{migration: true, cause: err.Error()}
	}
	db, err := openDB(opts.dataDir, rel, false)
	if err != nil {
		return nil, &startError{migration: true, cause: pyError(err)}
	}
	s := &server{id: id, opts: opts, faults: f, log: lg, db: db, startedAt: time.Now().UTC()}
	if err := s.prepare(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *server) prepare(ctx context.Context) error {
	rel := s.id.release
	if err := os.MkdirAll(s.opts.cacheDir, 0o755); err != nil {
		return &startError{cause: err.Error()}
	}
	m := &migrator{
		revs:     chainFor(rel, s.faults.devRevision),
		release:  rel,
		failAt:   s.faults.failMigration,
		log:      s.log,
		debug:    s.opts.debug,
		cacheDir: s.opts.cacheDir,
	}
	if rel.Dev {
		// The early c45e397531d1 on main had no cache move.
		m.cacheDir = ""
	}
	res, err := m.upgrade(ctx, s.db)
	if err != nil {
		return &startError{migration: true, cause: pyError(err)}
	}
	s.revision = res.to
	s.log.log(logServer, levelInfo, "Database migration completed.")

	if err := s.prepareData(ctx); err != nil {
		return &startError{cause: pyError(err)}
	}
	want, err := expectedSchema(ctx, codeChainFor(rel, s.faults.devRevision), rel)
	if err != nil {
		return &startError{cause: err.Error()}
	}
	if err := codeRuns(ctx, s.db, want); err != nil {
		return &startError{cause: pyError(err)}
	}

	s.cacheFiles, s.cacheBytes, err = cacheStats(s.opts.cacheDir)
	if err != nil {
		return &startError{cause: err.Error()}
	}
	s.log.log(logEmulator, levelInfo, "Cache dir %s: %d files, %d bytes already present.", s.opts.cacheDir, s.cacheFiles, s.cacheBytes)
	return nil
}

// prepareData writes the secrets files and the initial admin, as
// _prepare_data does after the migration.
func (s *server) prepareData(ctx context.Context) error {
	dir := s.opts.dataDir
	if s.opts.token == "" {
		if err := writeSecretIfAbsent(filepath.Join(dir, "token")); err != nil {
			return err
		}
	}
	if err := writeSecretIfAbsent(filepath.Join(dir, "jwt_secret_key")); err != nil {
		return err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE username = 'admin'").Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	password := s.opts.bootstrapPassword
	generated := password == ""
	if generated {
		p, err := randomHex(8)
		if err != nil {
			return err
		}
		password = p
		if err := os.WriteFile(filepath.Join(dir, "initial_admin_password"), []byte(password+"\n"), 0o600); err != nil {
			return fmt.Errorf("write initial admin password: %w", err)
		}
	}
	sum := sha256.Sum256([]byte(password))
	_, err := insertRow(ctx, s.db, "users", 1, map[string]any{
		"username":                "admin",
		"full_name":               "Default System Admin",
		"is_admin":                true,
		"require_password_change": generated,
		"hashed_password":         "emulator-sha256$" + hex.EncodeToString(sum[:]),
	})
	if err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	return nil
}

func writeSecretIfAbsent(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	secret, err := randomHex(16)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
