package emulator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// migratedTables are the tables `gpustack migrate` copies, in this order
// (facts §3.1).
var migratedTables = []string{
	"system_loads", "workers", "users", "api_keys", "model_files", "models",
	"model_instances", "modelinstancemodelfilelink", "model_usages",
}

// errCopyInterrupted is the injected failure midway through the copy.
var errCopyInterrupted = errors.New("(psycopg.errors.AdminShutdown) terminating connection due to administrator command")

// dataMigration runs the SQLite → PostgreSQL migration when prerun would:
// the flag of the release is set (GPUSTACK_DATA_MIGRATION=true from v2.0.1,
// GPUSTACK_MIGRATION_DATA_DIR in v2.0.0), database.db exists and
// run/state_migration_done does not. It reports whether it ran. Without the
// flag a database.db is only warned about (facts §5.3).
func dataMigration(ctx context.Context, rel Release, opts startOptions, f faults, getenv func(string) string, lg *logger, db *sql.DB) (bool, error) {
	srcDir := opts.dataDir
	enabled := false
	legacy := getenv("GPUSTACK_MIGRATION_DATA_DIR")
	if rel.atLeast(2, 0, 1) {
		enabled = envBool(getenv("GPUSTACK_DATA_MIGRATION"))
		if legacy != "" {
			lg.log(logPrerun, levelWarning, "GPUSTACK_MIGRATION_DATA_DIR is deprecated; migrating the data dir %s instead.", opts.dataDir)
			enabled = true
		}
	} else if legacy != "" {
		enabled, srcDir = true, legacy
	}
	sqliteFile := filepath.Join(srcDir, DatabaseFile)
	if _, err := os.Stat(sqliteFile); err != nil {
		return false, nil
	}
	done := filepath.Join(opts.dataDir, MigrationDoneFile)
	if _, err := os.Stat(done); err == nil {
		if enabled {
			lg.log(logMigrate, levelInfo, "Migration already completed previously. Skipping.")
		}
		return false, nil
	}
	if !enabled {
		lg.log(logPrerun, levelWarning, "Found the SQLite database %s, but %s is not set: it is not migrated, and GPUStack starts on an empty PostgreSQL database.",
			sqliteFile, rel.dataMigrationFlag())
		return false, nil
	}
	lg.log(logMigrate, levelInfo, "Migrating %s to PostgreSQL.", sqliteFile)
	if err := migrateData(ctx, srcDir, opts.dataDir, f, db); err != nil {
		return true, err
	}
	lg.log(logMigrate, levelInfo, "Migration completed successfully.")
	if err := os.MkdirAll(filepath.Dir(done), 0o755); err != nil {
		return true, fmt.Errorf("write %s: %w", MigrationDoneFile, err)
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return true, fmt.Errorf("write %s: %w", MigrationDoneFile, err)
	}
	return true, nil
}

// migrateData is `gpustack migrate`: copy database.db (and its -wal) to
// temporary files, bring the copy and PostgreSQL to d19176de3b74, copy the
// common columns of migratedTables, reset the sequences, delete the copy.
// database.db itself is never opened.
func migrateData(ctx context.Context, srcDir, dataDir string, f faults, pg *sql.DB) error {
	tmp := filepath.Join(dataDir, fmt.Sprintf("gpustack_migration_temp_%d.db", time.Now().UnixNano()))
	defer func() {
		for _, sfx := range []string{"", "-wal", "-shm", "-journal"} {
			os.Remove(tmp + sfx)
		}
	}()
	src := filepath.Join(srcDir, DatabaseFile)
	if err := copyFile(src, tmp); err != nil {
		return err
	}
	if _, err := os.Stat(src + "-wal"); err == nil {
		if err := copyFile(src+"-wal", tmp+"-wal"); err != nil {
			return err
		}
	}
	lite, err := sql.Open(driverName, tmp+"?_busy_timeout=10000")
	if err != nil {
		return fmt.Errorf("open %s: %w", tmp, err)
	}
	defer lite.Close()
	lite.SetMaxOpenConns(1)
	if _, err := lite.ExecContext(ctx, "DROP VIEW IF EXISTS gpu_devices_view"); err != nil {
		return fmt.Errorf("%s", pyError(err))
	}
	v071, _ := ParseRelease("v0.7.1")
	if _, err := (&migrator{revs: chainFor(v071, ""), release: v071}).upgrade(ctx, lite); err != nil {
		return fmt.Errorf("%s", pyError(err))
	}

	at, err := pgStamp(ctx, pg)
	if err != nil {
		return err
	}
	switch at {
	case "":
		if _, err := (&pgMigrator{revs: pgChain[:1]}).upgrade(ctx, pg); err != nil {
			return fmt.Errorf("%s", pyPGError(err))
		}
	case BaseRevision:
	default:
		return fmt.Errorf("the PostgreSQL database is at revision %s, past %s: it is not empty", at, BaseRevision)
	}

	for i, table := range migratedTables {
		if f.failDataMigration == "copy" && i == len(migratedTables)/2 {
			return errCopyInterrupted
		}
		if err := copyTable(ctx, lite, pg, table); err != nil {
			return err
		}
	}
	for _, table := range migratedTables {
		cols, err := pgColumns(ctx, pg, table)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(cols, func(c pgColumn) bool { return c.name == "id" }) {
			continue
		}
		q := fmt.Sprintf("SELECT setval(pg_get_serial_sequence('%s', 'id'), coalesce(max(id), 1), max(id) IS NOT NULL) FROM %s", table, table)
		if _, err := pg.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("reset sequence of %s: %s", table, pyPGError(err))
		}
	}
	return nil
}

func pgStamp(ctx context.Context, db *sql.DB) (string, error) {
	ok, err := pgHasTable(ctx, db, "alembic_version")
	if err != nil || !ok {
		return "", err
	}
	return stampedRevision(ctx, db)
}

// copyTable copies the columns both sides have, in one transaction.
func copyTable(ctx context.Context, lite, pg *sql.DB, table string) error {
	liteCols, err := tableInfo(ctx, lite, table)
	if err != nil {
		return err
	}
	if len(liteCols) == 0 {
		return nil
	}
	pgCols, err := pgColumns(ctx, pg, table)
	if err != nil {
		return err
	}
	types := map[string]string{}
	for _, c := range pgCols {
		types[c.name] = c.dataType
	}
	var common []string
	for _, c := range liteCols {
		if _, ok := types[c.Name]; ok {
			common = append(common, c.Name)
		}
	}
	if len(common) == 0 {
		return nil
	}
	rows, err := lite.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %q", quoteIdents(common), table))
	if err != nil {
		return fmt.Errorf("read %s: %s", table, pyError(err))
	}
	var data [][]any
	for rows.Next() {
		vals := make([]any, len(common))
		ptrs := make([]any, len(common))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return fmt.Errorf("read %s: %w", table, err)
		}
		for i, v := range vals {
			vals[i] = pgValue(v, types[common[i]])
		}
		data = append(data, vals)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	tx, err := pg.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ph := make([]string, len(common))
	for i := range ph {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	stmt, err := tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, quoteIdents(common), strings.Join(ph, ", ")))
	if err != nil {
		return fmt.Errorf("copy %s: %s", table, pyPGError(err))
	}
	for _, vals := range data {
		if _, err := stmt.ExecContext(ctx, vals...); err != nil {
			return fmt.Errorf("copy %s: %s", table, pyPGError(err))
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("copy %s: %s", table, pyPGError(err))
	}
	return nil
}

// pgValue converts what go-sqlite3 returns to what the PostgreSQL column
// accepts: SQLite stores booleans as integers and text as bytes.
func pgValue(v any, pgType string) any {
	switch x := v.(type) {
	case []byte:
		v = string(x)
	case int64:
		if pgType == "boolean" {
			return x != 0
		}
	}
	if s, ok := v.(string); ok && pgType == "boolean" {
		return s == "1" || s == "true"
	}
	return v
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("SQLite database file not found at %s", src)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("copy %s: %w", filepath.Base(src), err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", filepath.Base(src), err)
	}
	return out.Close()
}
