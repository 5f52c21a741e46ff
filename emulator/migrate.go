package emulator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// errDatabaseLocked is the cause reported for an injected migration failure.
var errDatabaseLocked = errors.New("(sqlite3.OperationalError) database is locked")

// migrator applies a chain of revisions the way Alembic's upgrade does, one
// revision per transaction, stamping alembic_version after each.
type migrator struct {
	revs    []*Revision
	release Release
	// failAt is a revision id, "any", or "": the first revision it matches
	// is half-applied outside a transaction and the run fails.
	failAt string
	log    *logger // nil: silent
	debug  bool
	// cacheDir receives the filesystem side effects of revisions marked
	// CacheMove; "" skips them.
	cacheDir string
}

// chainFor is the chain a release can run: the real chain up to its head.
// Dev images carry c45e397531d1 in its early, partial form, or a dev-only
// revision id after e6bf9e067296.
func chainFor(rel Release, devRevision string) []*Revision {
	if !rel.Dev {
		return chain[:revisionIndex(rel.Head())+1]
	}
	base := chain[:revisionIndex("e6bf9e067296")+1]
	last := devC45
	if devRevision != "" {
		last = &Revision{ID: devRevision, Down: "e6bf9e067296", Message: "dev-only revision"}
	}
	return append(append([]*Revision{}, base...), last)
}

// codeChainFor is the chain whose schema the release's code expects. The
// dev `main` image's code already wants the complete c45e397531d1.
func codeChainFor(rel Release, devRevision string) []*Revision {
	if rel.Dev && devRevision == "" {
		return chain[:revisionIndex("c45e397531d1")+1]
	}
	return chainFor(rel, devRevision)
}

// migrationResult tells what a run did.
type migrationResult struct {
	from, to string
	applied  []*Revision
}

func (m *migrator) logf(level, format string, args ...any) {
	if m.log != nil && m.debug {
		m.log.log(logAlembic, level, format, args...)
	}
}

func (m *migrator) upgrade(ctx context.Context, db *sql.DB) (migrationResult, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return migrationResult{}, err
	}
	defer conn.Close()
	// Batch-mode table recreation drops tables other tables refer to;
	// foreign keys can only be switched outside a transaction.
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys=OFF"); err != nil {
		return migrationResult{}, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys=ON")

	m.logf(levelInfo, "Context impl SQLiteImpl.")
	m.logf(levelInfo, "Will assume non-transactional DDL.")
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"); err != nil {
		return migrationResult{}, err
	}
	current, err := stampedRevision(ctx, conn)
	if err != nil {
		return migrationResult{}, err
	}
	res := migrationResult{from: current, to: current}
	start := 0
	if current != "" {
		i := indexIn(m.revs, current)
		if i < 0 {
			//lint:ignore ST1005 Alembic's own message, matched by log readers.
			return res, fmt.Errorf("Can't locate revision identified by '%s'", current)
		}
		start = i + 1
	}
	for _, rev := range m.revs[start:] {
		if m.failAt == rev.ID || m.failAt == "any" {
			if err := m.halfApply(ctx, conn, rev); err != nil {
				return res, err
			}
			return res, errDatabaseLocked
		}
		m.logf(levelInfo, "Running upgrade %s -> %s, %s", res.to, rev.ID, rev.Message)
		if err := m.apply(ctx, conn, rev, res.to); err != nil {
			return res, err
		}
		res.to = rev.ID
		res.applied = append(res.applied, rev)
		if rev.CacheMove && m.cacheDir != "" && m.log != nil {
			if err := migrateCache(m.cacheDir, m.log); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

func (m *migrator) apply(ctx context.Context, conn *sql.Conn, rev *Revision, from string) (err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if rev.Before != nil {
		if err := rev.Before(ctx, tx, m.release); err != nil {
			return err
		}
	}
	stmts, err := effectiveStatements(ctx, tx, rev)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	if from == "" {
		_, err = tx.ExecContext(ctx, "INSERT INTO alembic_version (version_num) VALUES (?)", rev.ID)
	} else {
		_, err = tx.ExecContext(ctx, "UPDATE alembic_version SET version_num = ? WHERE version_num = ?", rev.ID, from)
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}

// halfApply runs the first half of a revision's statements in autocommit
// mode, leaving the database partially migrated and unstamped (#1084).
func (m *migrator) halfApply(ctx context.Context, conn *sql.Conn, rev *Revision) error {
	stmts, err := effectiveStatements(ctx, conn, rev)
	if err != nil {
		return err
	}
	n := (rev.statementCount() + 1) / 2
	if n > len(stmts) {
		n = len(stmts)
	}
	for _, s := range stmts[:n] {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

type queryExecer interface {
	querier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// effectiveStatements evaluates each block's guard once, before any of the
// revision's statements run, and returns the statements to execute.
func effectiveStatements(ctx context.Context, q queryExecer, rev *Revision) ([]string, error) {
	var out []string
	for _, b := range rev.Blocks {
		skip := false
		if b.UnlessColumn[0] != "" {
			ok, err := columnExists(ctx, q, b.UnlessColumn[0], b.UnlessColumn[1])
			if err != nil {
				return nil, err
			}
			skip = ok
		}
		if b.UnlessTable != "" {
			ok, err := tableExists(ctx, q, b.UnlessTable)
			if err != nil {
				return nil, err
			}
			skip = ok
		}
		if !skip {
			out = append(out, b.Statements...)
		}
	}
	return out, nil
}

func columnExists(ctx context.Context, q queryExecer, table, col string) (bool, error) {
	cols, err := tableInfo(ctx, q, table)
	if err != nil {
		return false, err
	}
	for _, c := range cols {
		if c.Name == col {
			return true, nil
		}
	}
	return false, nil
}

func tableExists(ctx context.Context, q queryExecer, table string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", table).Scan(&n)
	return n > 0, err
}

func stampedRevision(ctx context.Context, q queryExecer) (string, error) {
	rows, err := q.QueryContext(ctx, "SELECT version_num FROM alembic_version")
	if err != nil {
		return "", fmt.Errorf("read alembic_version: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return "", fmt.Errorf("read alembic_version: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("read alembic_version: %w", err)
	}
	switch len(ids) {
	case 0:
		return "", nil
	case 1:
		return ids[0], nil
	default:
		//lint:ignore ST1005 Alembic's own message, matched by log readers.
		return "", fmt.Errorf("Multiple heads are present: %v", ids)
	}
}

func indexIn(revs []*Revision, id string) int {
	for i, r := range revs {
		if r.ID == id {
			return i
		}
	}
	return -1
}
