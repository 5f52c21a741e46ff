package emulator

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// enumDefaults gives NOT NULL enum-like columns a value the real code would
// accept, keyed by "table.column" or by column.
var enumDefaults = map[string]any{
	"model_instances.state": "RUNNING",
	"workers.state":         "READY",
	"model_files.state":     "READY",
	"source":                "HUGGING_FACE",
	"operation":             "CHAT_COMPLETION",
	"placement_strategy":    "SPREAD",
}

// insertRow inserts one row into table, filling every NOT NULL column that
// has no default and no override from PRAGMA table_info, so it works at any
// revision. Overrides for columns the table lacks are dropped. n makes text
// values unique. Foreign keys point at the referenced table's lowest id.
func insertRow(ctx context.Context, db *sql.DB, table string, n int, overrides map[string]any) (int64, error) {
	cols, err := tableInfo(ctx, db, table)
	if err != nil {
		return 0, err
	}
	if len(cols) == 0 {
		return 0, fmt.Errorf("insert into %s: no such table", table)
	}
	fks, err := foreignKeys(ctx, db, table)
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	var names []string
	var values []any
	for _, c := range cols {
		v, ok := overrides[c.Name]
		switch {
		case ok:
		case c.PK == 1 && len(pkColumns(cols)) == 1:
			continue // rowid alias
		case c.Name == "created_at" || c.Name == "updated_at":
			v = now.Format("2006-01-02 15:04:05.000000")
		case !c.NotNull || c.HasDefault:
			continue
		default:
			if ref, isFK := fks[c.Name]; isFK {
				id, err := lowestID(ctx, db, ref)
				if err != nil {
					return 0, fmt.Errorf("insert into %s: %s needs a row in %s: %w", table, c.Name, ref, err)
				}
				v = id
			} else {
				v = fillValue(table, c, n, now)
			}
		}
		names = append(names, c.Name)
		values = append(values, v)
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(names, ", "),
		strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", "))
	res, err := db.ExecContext(ctx, q, values...)
	if err != nil {
		return 0, fmt.Errorf("insert into %s: %w", table, err)
	}
	return res.LastInsertId()
}

func fillValue(table string, c column, n int, now time.Time) any {
	if v, ok := enumDefaults[table+"."+c.Name]; ok {
		return v
	}
	if v, ok := enumDefaults[c.Name]; ok {
		return v
	}
	t := strings.ToUpper(c.Type)
	switch {
	case strings.Contains(t, "BOOL"):
		return false
	case strings.Contains(t, "INT"):
		return n
	case strings.Contains(t, "FLOAT"), strings.Contains(t, "REAL"), strings.Contains(t, "DOUB"), strings.Contains(t, "NUMERIC"):
		return 0.0
	case strings.Contains(t, "JSON"):
		return "{}"
	case strings.Contains(t, "DATETIME"), strings.Contains(t, "TIMESTAMP"):
		return now.Format("2006-01-02 15:04:05.000000")
	case strings.Contains(t, "DATE"):
		return now.Format("2006-01-02")
	default:
		return fmt.Sprintf("%s-%s-%d-%d", table, c.Name, n, now.UnixNano()%1e9)
	}
}

func pkColumns(cols []column) []string {
	var pk []string
	for _, c := range cols {
		if c.PK > 0 {
			pk = append(pk, c.Name)
		}
	}
	return pk
}

func foreignKeys(ctx context.Context, db *sql.DB, table string) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, fmt.Sprintf("PRAGMA foreign_key_list(%q)", table))
	if err != nil {
		return nil, fmt.Errorf("foreign keys of %s: %w", table, err)
	}
	defer rows.Close()
	fks := map[string]string{}
	for rows.Next() {
		var (
			id, seq                                  int
			ref, from, onUpdate, onDelete, matchRule string
			to                                       sql.NullString
		)
		if err := rows.Scan(&id, &seq, &ref, &from, &to, &onUpdate, &onDelete, &matchRule); err != nil {
			return nil, fmt.Errorf("foreign keys of %s: %w", table, err)
		}
		fks[from] = ref
	}
	return fks, rows.Err()
}

func lowestID(ctx context.Context, db *sql.DB, table string) (int64, error) {
	var id sql.NullInt64
	if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT min(id) FROM %s", table)).Scan(&id); err != nil {
		return 0, err
	}
	if !id.Valid {
		return 0, fmt.Errorf("table %s is empty", table)
	}
	return id.Int64, nil
}

// seedCounts says how many rows seed inserts per table.
type seedCounts struct {
	users, models, instances int
	// worker (v2): the name of the worker the instances run on.
	worker string
}

// seed inserts users, then models, then model instances spread over the
// models. Each insert is its own transaction so a running server is only
// briefly locked out; busy_timeout covers the contention.
func seed(ctx context.Context, db *sql.DB, c seedCounts) error {
	base, err := nextID(ctx, db)
	if err != nil {
		return err
	}
	for i := 0; i < c.users; i++ {
		n := base + i
		if _, err := insertRow(ctx, db, "users", n, map[string]any{"username": fmt.Sprintf("seed-user-%d", n)}); err != nil {
			return fmt.Errorf("seed users: %w", err)
		}
	}
	type model struct {
		id   int64
		name string
	}
	var models []model
	for i := 0; i < c.models; i++ {
		name := fmt.Sprintf("seed-model-%d", base+i)
		id, err := insertRow(ctx, db, "models", base+i, map[string]any{"name": name, "replicas": 1, "ready_replicas": 0})
		if err != nil {
			return fmt.Errorf("seed models: %w", err)
		}
		models = append(models, model{id, name})
	}
	if c.instances > 0 && len(models) == 0 {
		var m model
		if err := db.QueryRowContext(ctx, "SELECT id, name FROM models ORDER BY id LIMIT 1").Scan(&m.id, &m.name); err != nil {
			return fmt.Errorf("seed model_instances: need a model: %w", err)
		}
		models = append(models, m)
	}
	for i := 0; i < c.instances; i++ {
		n := base + i
		m := models[i%len(models)]
		if _, err := insertRow(ctx, db, "model_instances", n, map[string]any{
			"name": fmt.Sprintf("seed-instance-%d", n), "model_id": m.id, "model_name": m.name,
		}); err != nil {
			return fmt.Errorf("seed model_instances: %w", err)
		}
	}
	return nil
}

// nextID gives a number past every existing id so that repeated seeds
// produce unique names.
func nextID(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	q := "SELECT max(coalesce((SELECT max(id) FROM users), 0), coalesce((SELECT max(id) FROM models), 0), coalesce((SELECT max(id) FROM model_instances), 0)) + 1"
	if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("seed: %w", err)
	}
	return n, nil
}

// rowCounts counts the rows of every table.
func rowCounts(ctx context.Context, db *sql.DB) (map[string]int64, error) {
	tables, err := tableNames(ctx, db)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(tables))
	for _, t := range tables {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdentsFor(db, []string{t})).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		counts[t] = n
	}
	return counts, nil
}

// pgRowCounts counts the rows of every table of the public schema.
func pgRowCounts(ctx context.Context, db *sql.DB) (map[string]int64, error) {
	tables, err := pgTables(ctx, db)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(tables))
	for _, t := range tables {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdentsFor(db, []string{t})).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		counts[t] = n
	}
	return counts, nil
}

// pgSeed is seed on the v2 schema: users are rows of users, or USER
// principals from 7c5e3f9a2d18 on; models get a cluster when none exists.
func pgSeed(ctx context.Context, db *sql.DB, c seedCounts) error {
	var base int
	q := `SELECT greatest(coalesce((SELECT max(id) FROM models), 0), coalesce((SELECT max(id) FROM model_instances), 0),
	coalesce((SELECT max(id) FROM %s), 0)) + 1`
	principals, err := pgHasTable(ctx, db, "principals")
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	users, userName := "users", "username"
	if principals {
		users, userName = "principals", "name"
	}
	if err := db.QueryRowContext(ctx, fmt.Sprintf(q, users)).Scan(&base); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	for i := 0; i < c.users; i++ {
		n := base + i
		over := map[string]any{userName: fmt.Sprintf("seed-user-%d", n), "hashed_password": "", "require_password_change": false}
		if principals {
			over = map[string]any{userName: fmt.Sprintf("seed-user-%d", n), "kind": "USER"}
		}
		if _, err := pgInsertRow(ctx, db, users, n, over); err != nil {
			return fmt.Errorf("seed users: %w", err)
		}
	}
	type model struct {
		id   int64
		name string
	}
	var models []model
	for i := 0; i < c.models; i++ {
		name := fmt.Sprintf("seed-model-%d", base+i)
		id, err := pgInsertRow(ctx, db, "models", base+i, map[string]any{"name": name, "replicas": 1, "ready_replicas": 0})
		if err != nil {
			return fmt.Errorf("seed models: %w", err)
		}
		models = append(models, model{id, name})
	}
	if c.instances > 0 && len(models) == 0 {
		var m model
		if err := db.QueryRowContext(ctx, "SELECT id, name FROM models ORDER BY id LIMIT 1").Scan(&m.id, &m.name); err != nil {
			return fmt.Errorf("seed model_instances: need a model: %w", err)
		}
		models = append(models, m)
	}
	var workerID int64
	if c.worker != "" && c.instances > 0 {
		err := db.QueryRowContext(ctx, "SELECT id FROM workers WHERE name = "+placeholder(db, 1), c.worker).Scan(&workerID)
		if err != nil {
			return fmt.Errorf("seed model_instances: worker %s: %w", c.worker, err)
		}
	}
	n := base - 1
	for i := 0; i < c.instances; i++ {
		m := models[i%len(models)]
		// Names follow ids elsewhere; skip those an earlier seed took.
		for taken := 1; taken > 0; {
			n++
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM model_instances WHERE name = "+placeholder(db, 1),
				fmt.Sprintf("seed-instance-%d", n)).Scan(&taken); err != nil {
				return fmt.Errorf("seed model_instances: %w", err)
			}
		}
		over := map[string]any{"name": fmt.Sprintf("seed-instance-%d", n), "model_id": m.id, "model_name": m.name}
		if workerID != 0 {
			over["worker_id"], over["worker_name"] = workerID, c.worker
		}
		if _, err := pgInsertRow(ctx, db, "model_instances", n, over); err != nil {
			return fmt.Errorf("seed model_instances: %w", err)
		}
	}
	return nil
}
