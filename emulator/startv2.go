package emulator

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runStartV2 is `gpustack start` of a v2 release: the embedded PostgreSQL
// comes up first (s6's postgres service), then the SQLite → PostgreSQL data
// migration when asked for (the gpustack-migration oneshot), then the
// server migrates the schema and serves.
func runStartV2(ctx context.Context, id identity, opts startOptions, f faults, lg *logger, getenv func(string) string, stderr io.Writer) int {
	rel := id.release
	lg.log(logStart, levelInfo, "GPUStack version: %s (%s)", rel.Version(), id.commit)
	if f.startupDelay > 0 {
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(f.startupDelay):
		}
	}
	if opts.databaseURL != "" {
		return runStartExternal(ctx, id, opts, f, lg)
	}
	if err := os.MkdirAll(opts.dataDir, 0o755); err != nil {
		lg.log(logEmulator, levelError, "data dir: %v", err)
		return 1
	}
	pg, err := newPostgres(getenv, opts.dataDir, opts.logDir, opts.dbPort, lg, stderr)
	if err == nil {
		err = pg.locate(rel)
	}
	if err != nil {
		lg.log(logEmulator, levelError, "embedded PostgreSQL: %v", err)
		return 1
	}
	db, err := pg.start(ctx, getenv)
	if err != nil {
		lg.log(logEmulator, levelError, "embedded PostgreSQL did not start: %v", err)
		return 1
	}
	s := &server{id: id, opts: opts, faults: f, log: lg, db: db, pg: pg, startedAt: time.Now().UTC()}

	ran, err := dataMigration(ctx, rel, opts, f, getenv, lg, db)
	if err != nil {
		lg.log(logMigrate, levelError, "Failed to migrate: %v", err)
		s.close()
		return 1
	}
	if ran && f.failDataMigration == "after-done" {
		// The server's own upgrade from d19176de3b74 fails right after
		// the done-file is written (#3575).
		s.faults.failMigration = pgChain[1].ID
	}
	if err := s.prepareV2(ctx); err != nil {
		code := reportFailure(lg, rel, err)
		if cerr := s.close(); cerr != nil {
			lg.log(logEmulator, levelError, "%v", cerr)
		}
		return code
	}
	return s.serve(ctx)
}

func (s *server) prepareV2(ctx context.Context) error {
	rel := s.id.release
	s.log.log(logServer, levelInfo, "Running database migration.")
	m := &pgMigrator{
		revs:    pgChainFor(rel),
		opts:    pgOptionsFor(rel, s.faults.gap5774),
		failAt:  s.faults.failMigration,
		log:     s.log,
		debug:   s.opts.debug,
		version: rel.Version(),
	}
	if rel.writesBootstrapVersion() {
		m.bootstrapFile = filepath.Join(s.opts.dataDir, BootstrapVersion)
	}
	upgrade := m.upgrade
	if s.mysql {
		upgrade = m.upgradeMySQL
	}
	res, err := upgrade(ctx, s.db)
	if err != nil {
		return &startError{migration: true, cause: pyPGError(err)}
	}
	s.revision = res.to
	s.log.log(logServer, levelInfo, "Database migration completed.")
	if err := s.prepareDataV2(ctx); err != nil {
		return &startError{cause: pyPGError(err)}
	}
	if err := os.MkdirAll(s.opts.cacheDir, 0o755); err != nil {
		return &startError{cause: err.Error()}
	}
	if s.flushColumnGap, err = s.completedMissing(ctx); err != nil {
		return &startError{cause: pyPGError(err)}
	}
	s.cacheFiles, s.cacheBytes, err = cacheStats(s.opts.cacheDir)
	if err != nil {
		return &startError{cause: err.Error()}
	}
	s.log.log(logEmulator, levelInfo, "Cache dir %s: %d files, %d bytes already present.", s.opts.cacheDir, s.cacheFiles, s.cacheBytes)
	return nil
}

// writesCompleted: the code of v2.2.0rc4 and later writes
// model_usage_details.completed.
func (r Release) writesCompleted() bool {
	if !r.atLeast(2, 2, 0) {
		return false
	}
	return !(r.minor == 2 && r.patch == 0 && r.rc >= 1 && r.rc <= 3)
}

func (s *server) completedMissing(ctx context.Context) (bool, error) {
	if !s.id.release.writesCompleted() {
		return false, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.columns
	WHERE `+schemaPred(s.db)+` AND table_name = 'model_usage_details' AND column_name = 'completed'`).Scan(&n)
	return n == 0, err
}

// flushUsage emulates the usage buffer's flush every 10 s on a database
// without model_usage_details.completed: each one fails, in GPUStack's log
// and in PostgreSQL's (#5774 filled the latter to 18 GB).
func (s *server) flushUsage(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		_, err := s.db.ExecContext(ctx, "UPDATE model_usage_details SET completed = true WHERE false")
		if err != nil && ctx.Err() == nil {
			s.log.log(logUsage, levelError, "Failed to flush usage details: %s", pyPGError(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prepareDataV2 writes the secrets files and the initial admin: a row of
// users before 7c5e3f9a2d18, a USER principal with a password row after.
func (s *server) prepareDataV2(ctx context.Context) error {
	dir := s.opts.dataDir
	if s.opts.token == "" {
		if err := writeSecretIfAbsent(filepath.Join(dir, "token")); err != nil {
			return err
		}
	}
	if err := writeSecretIfAbsent(filepath.Join(dir, "jwt_secret_key")); err != nil {
		return err
	}
	principals, err := pgHasTable(ctx, s.db, "principals")
	if err != nil {
		return err
	}
	exists := "SELECT count(*) FROM users WHERE username = 'admin'"
	if principals {
		exists = "SELECT count(*) FROM principals WHERE name = 'admin' AND kind = 'USER'"
	}
	var n int
	if err := s.db.QueryRowContext(ctx, exists).Scan(&n); err != nil {
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
	hashed := "emulator-sha256$" + hex.EncodeToString(sum[:])
	if !principals {
		_, err := pgInsertRow(ctx, s.db, "users", 1, map[string]any{
			"username": "admin", "full_name": "Default System Admin", "is_admin": true,
			"require_password_change": generated, "hashed_password": hashed,
		})
		if err != nil {
			return fmt.Errorf("create admin: %w", err)
		}
		return nil
	}
	id, err := pgInsertRow(ctx, s.db, "principals", 1, map[string]any{
		"name": "admin", "display_name": "Default System Admin", "is_admin": true, "kind": "USER",
	})
	if err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	_, err = pgInsertRow(ctx, s.db, "user_passwords", 1, map[string]any{
		"principal_id": id, "hashed_password": hashed, "require_password_change": generated,
	})
	if err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	return nil
}

func pgHasTable(ctx context.Context, q queryExecer, table string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.tables WHERE "+schemaPred(q)+" AND table_name = "+placeholder(q, 1), table).Scan(&n)
	return n > 0, err
}

// pgColumn is a column as information_schema describes it.
type pgColumn struct {
	name, dataType, udtName string
	notNull, hasDefault     bool
}

func pgColumns(ctx context.Context, q querier, table string) ([]pgColumn, error) {
	query := `SELECT column_name, data_type, udt_name, is_nullable = 'NO', column_default IS NOT NULL
	FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`
	if isMySQL(q) {
		// JSON is LONGTEXT in MariaDB; AUTO_INCREMENT ids have no default.
		query = `SELECT column_name, data_type, column_type, is_nullable = 'NO', column_default IS NOT NULL OR extra LIKE '%auto_increment%'
	FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position`
	}
	rows, err := q.QueryContext(ctx, query, table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	defer rows.Close()
	var cols []pgColumn
	for rows.Next() {
		var c pgColumn
		if err := rows.Scan(&c.name, &c.dataType, &c.udtName, &c.notNull, &c.hasDefault); err != nil {
			return nil, fmt.Errorf("columns of %s: %w", table, err)
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// pgForeignKeys maps a table's single-column foreign keys to the tables
// they reference.
func pgForeignKeys(ctx context.Context, q querier, table string) (map[string]string, error) {
	query := `SELECT a.attname, r.relname FROM pg_constraint c
	JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
	JOIN pg_class r ON r.oid = c.confrelid
	WHERE c.contype = 'f' AND c.conrelid = $1::regclass`
	if isMySQL(q) {
		query = `SELECT column_name, referenced_table_name FROM information_schema.key_column_usage
	WHERE table_schema = DATABASE() AND table_name = ? AND referenced_table_name IS NOT NULL`
	}
	rows, err := q.QueryContext(ctx, query, table)
	if err != nil {
		return nil, fmt.Errorf("foreign keys of %s: %w", table, err)
	}
	defer rows.Close()
	fks := map[string]string{}
	for rows.Next() {
		var col, ref string
		if err := rows.Scan(&col, &ref); err != nil {
			return nil, fmt.Errorf("foreign keys of %s: %w", table, err)
		}
		fks[col] = ref
	}
	return fks, rows.Err()
}

// pgInsertRow is insertRow for PostgreSQL: it fills every NOT NULL column
// without a default, and inserts a row into a referenced table that is
// still empty (models need a cluster from 924c9a0b4c13 on). It returns
// the new row's id, or 0 for tables without one.
func pgInsertRow(ctx context.Context, db *sql.DB, table string, n int, overrides map[string]any) (int64, error) {
	return pgInsertRowDepth(ctx, db, table, n, overrides, 0)
}

func pgInsertRowDepth(ctx context.Context, db *sql.DB, table string, n int, overrides map[string]any, depth int) (int64, error) {
	cols, err := pgColumns(ctx, db, table)
	if err != nil {
		return 0, err
	}
	if len(cols) == 0 {
		return 0, fmt.Errorf("insert into %s: no such table", table)
	}
	fks, err := pgForeignKeys(ctx, db, table)
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	var names []string
	var values []any
	hasID := false
	for _, c := range cols {
		if c.name == "id" {
			hasID = true
		}
		v, ok := overrides[c.name]
		switch {
		case ok:
		case c.name == "created_at" || c.name == "updated_at":
			v = now
		case !c.notNull || c.hasDefault:
			continue
		default:
			if ref, isFK := fks[c.name]; isFK {
				id, err := lowestID(ctx, db, ref)
				if err != nil && depth < 3 && ref != table {
					id, err = pgInsertRowDepth(ctx, db, ref, n, nil, depth+1)
				}
				if err != nil {
					return 0, fmt.Errorf("insert into %s: %s needs a row in %s: %w", table, c.name, ref, err)
				}
				v = id
			} else if v, err = pgFillValue(ctx, db, table, c, n, now); err != nil {
				return 0, err
			}
		}
		names = append(names, c.name)
		values = append(values, v)
	}
	ph := make([]string, len(names))
	for i := range ph {
		ph[i] = placeholder(db, i+1)
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, quoteIdentsFor(db, names), strings.Join(ph, ", "))
	if isMySQL(db) {
		res, err := db.ExecContext(ctx, q, values...)
		if err != nil {
			return 0, fmt.Errorf("insert into %s: %w", table, err)
		}
		if !hasID {
			return 0, nil
		}
		id, err := res.LastInsertId()
		if err != nil {
			return 0, fmt.Errorf("insert into %s: %w", table, err)
		}
		return id, nil
	}
	if !hasID {
		if _, err := db.ExecContext(ctx, q, values...); err != nil {
			return 0, fmt.Errorf("insert into %s: %w", table, err)
		}
		return 0, nil
	}
	var id int64
	if err := db.QueryRowContext(ctx, q+" RETURNING id", values...).Scan(&id); err != nil {
		return 0, fmt.Errorf("insert into %s: %w", table, err)
	}
	return id, nil
}

func quoteIdents(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = `"` + n + `"`
	}
	return strings.Join(q, ", ")
}

// pgEnumDefaults add v2 enum-like columns to enumDefaults.
var pgEnumDefaults = map[string]any{
	"kind":           "USER",
	"provider":       "Docker",
	"clusters.state": "READY",
}

func pgFillValue(ctx context.Context, db *sql.DB, table string, c pgColumn, n int, now time.Time) (any, error) {
	for _, m := range []map[string]any{enumDefaults, pgEnumDefaults} {
		if v, ok := m[table+"."+c.name]; ok {
			return v, nil
		}
		if v, ok := m[c.name]; ok {
			return v, nil
		}
	}
	switch c.dataType {
	case "boolean", "tinyint":
		return false, nil
	case "integer", "bigint", "smallint", "int":
		return n, nil
	case "double precision", "real", "numeric", "double":
		return 0.0, nil
	case "json", "jsonb", "longtext":
		return "{}", nil
	case "timestamp without time zone", "timestamp with time zone", "datetime":
		return now, nil
	case "date":
		return now.Format("2006-01-02"), nil
	case "USER-DEFINED":
		var label string
		err := db.QueryRowContext(ctx, `SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
		WHERE t.typname = $1 ORDER BY e.enumsortorder LIMIT 1`, c.udtName).Scan(&label)
		if err != nil {
			return nil, fmt.Errorf("insert into %s: first value of %s: %w", table, c.udtName, err)
		}
		return label, nil
	default:
		return fmt.Sprintf("%s-%s-%d-%d", table, c.name, n, now.UnixNano()%1e9), nil
	}
}
