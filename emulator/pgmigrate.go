package emulator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// errLockTimeout is the cause reported for an injected migration failure
// on PostgreSQL.
var errLockTimeout = errors.New("(psycopg.errors.LockNotAvailable) canceling statement due to lock timeout")

// pgMigrator applies the v2 chain like Alembic with transactional_ddl on
// PostgreSQL: every pending revision in one transaction, so a failure
// leaves the database at the stamp it had.
type pgMigrator struct {
	revs []*pgRevision
	opts pgOptions
	// failAt is a revision id, "any", or "": the step it matches runs half
	// its statements, then the run fails and rolls back.
	failAt string
	log    *logger
	debug  bool
	// bootstrapFile, if set, is written when the initial revision runs
	// (v2.0.1+ fresh installs, not under `gpustack migrate`).
	bootstrapFile, version string
}

func (m *pgMigrator) logf(format string, args ...any) {
	if m.log != nil && m.debug {
		m.log.log(logAlembic, levelInfo, format, args...)
	}
}

// failsAt reports whether the injected failure hits rev. On PostgreSQL
// revisions 1–10 are one step, so naming any of them hits the base.
func (m *pgMigrator) failsAt(rev *pgRevision) bool {
	if m.failAt == "any" || m.failAt == rev.ID {
		return true
	}
	return rev.ID == BaseRevision && slices.Contains(sqliteEraIDs, m.failAt)
}

// upgrade brings db to the last revision of m.revs.
func (m *pgMigrator) upgrade(ctx context.Context, db *sql.DB) (res migrationResult, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	m.logf("Context impl PostgresqlImpl.")
	m.logf("Will assume transactional DDL.")
	res, start, err := m.begin(ctx, tx)
	if err != nil {
		return res, err
	}
	to := res.from
	for _, rev := range m.revs[start:] {
		stmts := rev.statements(m.opts)
		if m.failsAt(rev) {
			for _, s := range stmts[:(len(stmts)+1)/2] {
				if _, err := tx.ExecContext(ctx, s); err != nil {
					return res, err
				}
			}
			return res, errLockTimeout
		}
		m.logf("Running upgrade %s -> %s, %s", to, rev.ID, rev.Message)
		if rev.Before != nil {
			if err := rev.Before(ctx, tx); err != nil {
				return res, err
			}
		}
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return res, err
			}
		}
		if rev.ID == BaseRevision && m.bootstrapFile != "" {
			// The initial revision writes it as a side effect: it stays
			// even when a later revision fails and the run rolls back.
			if err := writeBootstrap(m.bootstrapFile, m.version); err != nil {
				return res, err
			}
		}
		if to == "" {
			_, err = tx.ExecContext(ctx, "INSERT INTO alembic_version (version_num) VALUES ($1)", rev.ID)
		} else {
			_, err = tx.ExecContext(ctx, "UPDATE alembic_version SET version_num = $1 WHERE version_num = $2", rev.ID, to)
		}
		if err != nil {
			return res, err
		}
		to = rev.ID
	}
	if err := tx.Commit(); err != nil {
		return res, err
	}
	res.to = to
	return res, nil
}

// writeBootstrap writes <data-dir>/bootstrap_version.
// stampExecer is a transaction or connection that can stamp and run DDL.
type stampExecer interface {
	queryExecer
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// begin creates alembic_version if needed (as Alembic does), reads the
// stamp and returns the index in m.revs of the first revision to apply;
// a stamp the chain does not know is Alembic's "Can't locate revision".
func (m *pgMigrator) begin(ctx context.Context, q stampExecer) (migrationResult, int, error) {
	if _, err := q.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"); err != nil {
		return migrationResult{}, 0, err
	}
	current, err := stampedRevision(ctx, q)
	if err != nil {
		return migrationResult{}, 0, err
	}
	res := migrationResult{from: current, to: current}
	if current == "" {
		return res, 0, nil
	}
	i := pgIndexIn(m.revs, current)
	if i < 0 {
		//lint:ignore ST1005 Alembic's own message, matched by log readers.
		return res, 0, fmt.Errorf("Can't locate revision identified by '%s'", current)
	}
	return res, i + 1, nil
}

func writeBootstrap(path, version string) error {
	if err := os.WriteFile(path, []byte(version+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// pgSchema reads the user tables and their columns of the public schema,
// alembic_version excluded.
func pgSchema(ctx context.Context, q querier) (schema, error) {
	rows, err := q.QueryContext(ctx, `SELECT c.table_name, c.column_name FROM information_schema.columns c
	JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
	WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.table_name <> 'alembic_version'
	ORDER BY c.table_name, c.ordinal_position`)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	defer rows.Close()
	s := schema{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, fmt.Errorf("read schema: %w", err)
		}
		s[t] = append(s[t], c)
	}
	return s, rows.Err()
}

// pgTables lists the user tables of the public schema, sorted.
func pgTables(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT table_name FROM information_schema.tables WHERE "+schemaPred(q)+" AND table_type = 'BASE TABLE' ORDER BY table_name")
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
