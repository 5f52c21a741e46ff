package emulator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/mattn/go-sqlite3"
)

const driverName = "sqlite3_gpustack_emulator"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			// Images are FROM scratch: no /tmp, so keep temporary storage
			// in memory.
			_, err := c.Exec("PRAGMA temp_store=memory", nil)
			return err
		},
	})
}

// DatabaseFile is the SQLite file name inside the data dir.
const DatabaseFile = "database.db"

// openDB opens <dataDir>/database.db with the pragmas of the release's era.
// With mustExist the file is not created.
func openDB(dataDir string, rel Release, mustExist bool) (*sql.DB, error) {
	path := filepath.Join(dataDir, DatabaseFile)
	if mustExist {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
	}
	dsn := path + "?_foreign_keys=on&_busy_timeout=10000"
	if rel.usesWAL() {
		dsn += "&_journal_mode=WAL&_synchronous=NORMAL"
	}
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// One connection: per-connection pragmas (foreign_keys off during
	// migrations) then apply to every statement.
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if rel.usesWAL() {
		var mode string
		if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
			db.Close()
			return nil, fmt.Errorf("read journal mode: %w", err)
		}
		if !strings.EqualFold(mode, "wal") {
			db.Close()
			return nil, fmt.Errorf("journal mode is %q, want wal", mode)
		}
	}
	return db, nil
}

// closeDB checkpoints the WAL (if any) and closes, as a clean shutdown does.
func closeDB(db *sql.DB) error {
	var busy, logFrames, checkpointed int
	err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &checkpointed)
	if err == nil && busy != 0 {
		err = errors.New("checkpoint: database busy")
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// pyError renders an error the way SQLAlchemy prints the DBAPI exception:
// "(sqlite3.OperationalError) duplicate column name: categories".
func pyError(err error) string {
	var se sqlite3.Error
	if errors.As(err, &se) {
		class := "OperationalError"
		if se.Code == sqlite3.ErrConstraint {
			class = "IntegrityError"
		}
		return fmt.Sprintf("(sqlite3.%s) %s", class, se.Error())
	}
	return err.Error()
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// tableNames lists the user tables, sorted.
func tableNames(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
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

// column is one row of PRAGMA table_info.
type column struct {
	Name       string
	Type       string
	NotNull    bool
	HasDefault bool
	PK         int
}

func tableInfo(ctx context.Context, q querier, table string) ([]column, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf("PRAGMA table_info(%q)", table))
	if err != nil {
		return nil, fmt.Errorf("table info %s: %w", table, err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var (
			cid     int
			c       column
			notNull int
			dflt    sql.NullString
		)
		if err := rows.Scan(&cid, &c.Name, &c.Type, &notNull, &dflt, &c.PK); err != nil {
			return nil, fmt.Errorf("table info %s: %w", table, err)
		}
		c.NotNull, c.HasDefault = notNull != 0, dflt.Valid
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// schema maps table name to its column names.
type schema map[string][]string

func readSchema(ctx context.Context, q querier) (schema, error) {
	tables, err := tableNames(ctx, q)
	if err != nil {
		return nil, err
	}
	s := schema{}
	for _, t := range tables {
		if t == "alembic_version" {
			continue
		}
		cols, err := tableInfo(ctx, q, t)
		if err != nil {
			return nil, err
		}
		for _, c := range cols {
			s[t] = append(s[t], c.Name)
		}
	}
	return s, nil
}

var memoryDBSeq atomic.Int64

// expectedSchema is the schema the release's code is written against: the
// result of running the given chain on an empty database.
func expectedSchema(ctx context.Context, revs []*Revision, rel Release) (schema, error) {
	name := fmt.Sprintf("file:expected%d?mode=memory&cache=shared", memoryDBSeq.Add(1))
	db, err := sql.Open(driverName, name)
	if err != nil {
		return nil, fmt.Errorf("expected schema: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	m := &migrator{revs: revs, release: rel}
	if _, err := m.upgrade(ctx, db); err != nil {
		return nil, fmt.Errorf("expected schema: %w", err)
	}
	return readSchema(ctx, db)
}

// checkOrder puts the tables the server touches first at start-up ahead of
// the rest, so a gap like #1900 reports model_instances.resolved_path.
func checkOrder(s schema) []string {
	first := []string{"model_instances", "models", "workers", "users"}
	var rest []string
	for t := range s {
		if !slices.Contains(first, t) {
			rest = append(rest, t)
		}
	}
	sort.Strings(rest)
	var out []string
	for _, t := range first {
		if _, ok := s[t]; ok {
			out = append(out, t)
		}
	}
	return append(out, rest...)
}

// codeRuns emulates the release's ORM touching every table it maps: a
// missing table or column fails the way SQLAlchemy's query would.
func codeRuns(ctx context.Context, db *sql.DB, want schema) error {
	for _, t := range checkOrder(want) {
		cols := make([]string, len(want[t]))
		for i, c := range want[t] {
			cols[i] = t + "." + c
		}
		q := fmt.Sprintf("SELECT %s FROM %s LIMIT 0", strings.Join(cols, ", "), t)
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		rows.Close()
	}
	return nil
}
