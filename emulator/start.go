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
		reportFailure(lg, id.release, err)
		return 0
	}
	return s.serve(ctx)
}

// reportFailure logs a failed start in the release's era (facts §3.1).
func reportFailure(lg *logger, rel Release, err error) {
	msg := err.Error()
	var se *startError
	if errors.As(err, &se) && se.migration && rel.failureEra() == eraWrapped {
		msg = "Database migration failed: " + se.cause
	}
	switch rel.failureEra() {
	case eraCritical:
		lg.log(logStart, levelCrit, "%s", msg)
	default:
		lg.log(logStart, levelError, "Error running server: %s", msg)
		lg.log(logStart, levelInfo, "Server has shut down.")
	}
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
