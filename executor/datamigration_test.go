package executor

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func sqliteFile(t *testing.T, stmts ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "database.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return path
}

func TestCountForJumpSubtractsOllamaRows(t *testing.T) {
	path := sqliteFile(t,
		"CREATE TABLE alembic_version (version_num VARCHAR NOT NULL)",
		"INSERT INTO alembic_version VALUES ('d19176de3b74')",
		"CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT)",
		"INSERT INTO users (username) VALUES ('admin'), ('ops')",
		"CREATE TABLE models (id INTEGER PRIMARY KEY, source TEXT)",
		"INSERT INTO models (source) VALUES ('HUGGING_FACE'), ('OLLAMA_LIBRARY'), ('OLLAMA_LIBRARY'), ('MODEL_SCOPE')",
		"CREATE TABLE modelinstancemodelfilelink (model_instance_id INTEGER, model_file_id INTEGER)",
		"INSERT INTO modelinstancemodelfilelink VALUES (1, 1)",
		"CREATE TABLE not_migrated (id INTEGER)",
		"INSERT INTO not_migrated VALUES (1)",
	)
	want, err := countForJump(path)
	if err != nil {
		t.Fatal(err)
	}
	if want.before["models"] != 4 || want.least["models"] != 2 {
		t.Errorf("models: before %d least %d, want 4 and 2", want.before["models"], want.least["models"])
	}
	if want.before["users"] != 2 || want.least["users"] != 2 {
		t.Errorf("users: before %d least %d, want 2 and 2", want.before["users"], want.least["users"])
	}
	if _, ok := want.least["modelinstancemodelfilelink"]; ok {
		t.Error("links are checked although Ollama model rows will be deleted with theirs")
	}
	if _, ok := want.before["not_migrated"]; ok {
		t.Error("a table v2 does not copy is expected after the migration")
	}
	if _, ok := want.before["workers"]; ok {
		t.Error("a table absent from the v0.x database is expected after the migration")
	}
}

func TestMigratedRowsKept(t *testing.T) {
	want := expectedRows{
		before: map[string]int64{"users": 2, "models": 4, "workers": 1},
		least:  map[string]int64{"users": 2, "models": 2, "workers": 1},
	}
	cases := []struct {
		name string
		got  map[string]int64
		bad  string
	}{
		{"all kept", map[string]int64{"users": 3, "models": 2, "workers": 1}, ""},
		{"users became principals", map[string]int64{"principals": 4, "models": 4, "workers": 1}, ""},
		{"a model lost", map[string]int64{"users": 2, "models": 1, "workers": 1}, "table models holds 1 rows after the migration, the v0.x database had 4"},
		{"workers missing", map[string]int64{"users": 2, "models": 2}, "table workers is missing after the migration"},
		{"principals too few", map[string]int64{"principals": 1, "models": 2, "workers": 1}, "table users holds 1 rows"},
	}
	for _, c := range cases {
		err := migratedRowsKept(want, c.got)
		if c.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		var f *Failure
		if !errors.As(err, &f) || !strings.Contains(f.Message, c.bad) {
			t.Errorf("%s: got %v, want a failure containing %q", c.name, err, c.bad)
		}
	}
}

func TestDescribeRows(t *testing.T) {
	if got := describeRows(map[string]int64{"users": 2, "models": 0, "workers": 3}); got != "5 rows: users 2, workers 3" {
		t.Errorf("got %q", got)
	}
	if got := describeRows(map[string]int64{"users": 0}); got != "no rows to copy" {
		t.Errorf("got %q", got)
	}
}
