// Package schema reads what a GPUStack SQLite database really contains: the
// Alembic revision it is stamped with, its tables and columns, and whether
// SQLite considers it intact. It opens files read-only and never writes to
// them; callers hand it a copy, never the live database of a running server.
package schema

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	// Registers the "sqlite3" driver.
	_ "github.com/mattn/go-sqlite3"
)

// Snapshot is what a database file holds.
type Snapshot struct {
	// Revision is the value of alembic_version.version_num; empty when the
	// table is absent or empty (a database GPUStack never migrated).
	Revision string `json:"revision"`
	// Tables maps table name to its column names, sorted. Views are left out.
	Tables map[string][]string `json:"tables"`
	// Rows counts the rows of every table.
	Rows map[string]int64 `json:"rows"`
}

// Options select the optional, slower parts of an inspection.
type Options struct {
	// CountRows fills Snapshot.Rows.
	CountRows bool
	// Integrity runs PRAGMA integrity_check and fails unless it returns "ok".
	Integrity bool
}

// ErrIntegrity is returned (wrapped) when PRAGMA integrity_check fails.
var ErrIntegrity = errors.New("integrity check failed")

// Inspect opens the SQLite file at path read-only and describes it. A -wal
// file next to it is read too, so a copy of a WAL-mode database must keep
// database.db-wal beside database.db.
func Inspect(path string, opts Options) (*Snapshot, error) {
	db, err := open(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return inspect(db, opts)
}

func open(path string) (*sql.DB, error) {
	// mode=ro keeps the file unchanged; immutable is not used because a
	// -wal file beside the copy must still be read.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_busy_timeout=5000"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func inspect(db *sql.DB, opts Options) (*Snapshot, error) {
	if opts.Integrity {
		if err := integrity(db); err != nil {
			return nil, err
		}
	}
	tables, err := tableNames(db)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Tables: make(map[string][]string, len(tables))}
	for _, t := range tables {
		cols, err := columns(db, t)
		if err != nil {
			return nil, err
		}
		s.Tables[t] = cols
	}
	if _, ok := s.Tables["alembic_version"]; ok {
		rev, err := revision(db)
		if err != nil {
			return nil, err
		}
		s.Revision = rev
	}
	if opts.CountRows {
		s.Rows = make(map[string]int64, len(tables))
		for _, t := range tables {
			var n int64
			if err := db.QueryRow(`SELECT count(*) FROM ` + quoteIdent(t)).Scan(&n); err != nil {
				return nil, fmt.Errorf("count rows of %s: %w", t, err)
			}
			s.Rows[t] = n
		}
	}
	return s, nil
}

func integrity(db *sql.DB) error {
	rows, err := db.Query(`PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrIntegrity, err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("read integrity_check: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrIntegrity, err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("%w: %s", ErrIntegrity, strings.Join(msgs, "; "))
	}
	return nil
}

func tableNames(db *sql.DB) ([]string, error) {
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return names, nil
}

func columns(db *sql.DB, table string) ([]string, error) {
	rows, err := db.Query(`SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("columns of %s: %w", table, err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	sort.Strings(cols)
	return cols, nil
}

func revision(db *sql.DB) (string, error) {
	rows, err := db.Query(`SELECT version_num FROM alembic_version`)
	if err != nil {
		return "", fmt.Errorf("read alembic_version: %w", err)
	}
	defer rows.Close()
	var revs []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return "", fmt.Errorf("read alembic_version: %w", err)
		}
		revs = append(revs, r)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("read alembic_version: %w", err)
	}
	switch len(revs) {
	case 0:
		return "", nil
	case 1:
		return revs[0], nil
	default:
		// Two heads (as with a7c1b20f9d3e, #3812) cannot be upgraded by any release.
		sort.Strings(revs)
		return "", fmt.Errorf("alembic_version holds %d revisions (%s): the database has more than one head", len(revs), strings.Join(revs, ", "))
	}
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
