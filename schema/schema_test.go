package schema

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// newDB creates a SQLite file at path (in rollback-journal mode) and runs stmts.
func newDB(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func dbPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "database.db")
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestInspectRevision(t *testing.T) {
	tests := []struct {
		name    string
		stmts   []string
		want    string
		wantErr string
	}{
		{
			name:  "one row",
			stmts: []string{`CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)`, `INSERT INTO alembic_version VALUES ('e6bf9e067296')`},
			want:  "e6bf9e067296",
		},
		{
			name:  "no alembic table",
			stmts: []string{`CREATE TABLE users (id INTEGER PRIMARY KEY)`},
			want:  "",
		},
		{
			name:  "empty alembic table",
			stmts: []string{`CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)`},
			want:  "",
		},
		{
			name: "two heads",
			stmts: []string{
				`CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)`,
				`INSERT INTO alembic_version VALUES ('e6bf9e067296')`,
				`INSERT INTO alembic_version VALUES ('a7c1b20f9d3e')`,
			},
			wantErr: "more than one head",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := dbPath(t)
			newDB(t, p, tt.stmts...)
			s, err := Inspect(p, Options{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Inspect error = %v, want one mentioning %q", err, tt.wantErr)
				}
				// Both heads are named, sorted, so the user can see them.
				if !strings.Contains(err.Error(), "a7c1b20f9d3e, e6bf9e067296") {
					t.Errorf("error %q should name both revisions", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if s.Revision != tt.want {
				t.Errorf("Revision = %q, want %q", s.Revision, tt.want)
			}
		})
	}
}

func TestInspectTablesSortedViewsExcluded(t *testing.T) {
	p := dbPath(t)
	newDB(t, p,
		`CREATE TABLE zebra (z TEXT, a TEXT, m INTEGER)`,
		`CREATE TABLE "odd ""name""" (b TEXT, a TEXT)`,
		// AUTOINCREMENT makes SQLite create sqlite_sequence, an internal table.
		`CREATE TABLE apple (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)`,
		`CREATE INDEX apple_name ON apple (name)`,
		`CREATE VIEW apple_names AS SELECT name FROM apple`,
		`INSERT INTO apple (name) VALUES ('x')`,
	)
	s, err := Inspect(p, Options{})
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	want := map[string][]string{
		"apple":      {"id", "name"},
		`odd "name"`: {"a", "b"},
		"zebra":      {"a", "m", "z"},
	}
	if !reflect.DeepEqual(s.Tables, want) {
		t.Errorf("Tables = %v, want %v", s.Tables, want)
	}
	if s.Rows != nil {
		t.Errorf("Rows = %v without CountRows, want nil", s.Rows)
	}
}

func TestInspectCountRows(t *testing.T) {
	p := dbPath(t)
	stmts := []string{
		`CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)`,
		`INSERT INTO alembic_version VALUES ('c45e397531d1')`,
		`CREATE TABLE models (id INTEGER PRIMARY KEY, name TEXT)`,
		`CREATE TABLE "model instances" (id INTEGER PRIMARY KEY)`,
	}
	for i := 0; i < 7; i++ {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO models (name) VALUES ('m%d')`, i))
	}
	newDB(t, p, stmts...)
	s, err := Inspect(p, Options{CountRows: true})
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	want := map[string]int64{"alembic_version": 1, "models": 7, "model instances": 0}
	if !reflect.DeepEqual(s.Rows, want) {
		t.Errorf("Rows = %v, want %v", s.Rows, want)
	}
}

// corruptible builds a database whose table t spans several pages and
// returns the number of t's root page and the page size.
func corruptible(t *testing.T, p string) (root, pageSize int) {
	t.Helper()
	stmts := []string{
		`CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)`,
		`INSERT INTO alembic_version VALUES ('e6bf9e067296')`,
		`CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)`,
		`CREATE INDEX t_s ON t (s)`,
	}
	for i := 0; i < 200; i++ {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO t (s) VALUES ('%s')`, strings.Repeat(fmt.Sprint(i), 20)))
	}
	newDB(t, p, stmts...)
	db, err := sql.Open("sqlite3", "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT rootpage FROM sqlite_master WHERE name = 't'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	return root, pageSize
}

func TestInspectIntegrity(t *testing.T) {
	t.Run("intact", func(t *testing.T) {
		p := dbPath(t)
		corruptible(t, p)
		s, err := Inspect(p, Options{Integrity: true, CountRows: true})
		if err != nil {
			t.Fatalf("Inspect: %v", err)
		}
		if s.Revision != "e6bf9e067296" || s.Rows["t"] != 200 {
			t.Errorf("got revision %q and %d rows, want e6bf9e067296 and 200", s.Revision, s.Rows["t"])
		}
	})
	t.Run("flipped byte in a b-tree page", func(t *testing.T) {
		p := dbPath(t)
		root, pageSize := corruptible(t, p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// Byte 5 of a b-tree page header is the start of its cell content
		// area; flipping it leaves the file openable but inconsistent.
		b[(root-1)*pageSize+5] ^= 0xff
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = Inspect(p, Options{Integrity: true})
		if !errors.Is(err, ErrIntegrity) {
			t.Fatalf("Inspect error = %v, want one wrapping ErrIntegrity", err)
		}
	})
	t.Run("not a database", func(t *testing.T) {
		p := dbPath(t)
		if err := os.WriteFile(p, []byte(strings.Repeat("not sqlite ", 500)), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Inspect(p, Options{Integrity: true}); err == nil {
			t.Fatal("Inspect of a file that is not a database succeeded")
		}
	})
}

// TestInspectOddPath opens a file whose path holds characters that mean
// something in a SQLite URI.
func TestInspectOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups 100% #1?mode=rw&x")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "database.db")
	newDB(t, p, `CREATE TABLE alembic_version (version_num TEXT)`, `INSERT INTO alembic_version VALUES ('e6bf9e067296')`)
	before := sha(t, p)
	s, err := Inspect(p, Options{Integrity: true})
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if s.Revision != "e6bf9e067296" {
		t.Errorf("Revision = %q, want e6bf9e067296", s.Revision)
	}
	if sha(t, p) != before {
		t.Error("Inspect modified the database file")
	}
}

func TestInspectMissingFileIsNotCreated(t *testing.T) {
	p := dbPath(t)
	if _, err := Inspect(p, Options{}); err == nil {
		t.Fatal("Inspect of a missing file succeeded")
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Inspect left a file at %s (stat: %v); it must open read-only", p, err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestInspectWALCopy copies a live WAL-mode database the way observe does
// (database.db, -wal, -shm, the writer still open) and checks that rows
// only in the -wal are seen and that the copy is left as it was.
func TestInspectWALCopy(t *testing.T) {
	src := dbPath(t)
	w, err := sql.Open("sqlite3", "file:"+src)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	var mode string
	if err := w.QueryRow(`PRAGMA journal_mode=WAL`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q (%v), want wal", mode, err)
	}
	for _, s := range []string{
		`PRAGMA wal_autocheckpoint=0`,
		`CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)`,
		`INSERT INTO alembic_version VALUES ('004c73a5c09e')`,
		`CREATE TABLE models (id INTEGER PRIMARY KEY, name TEXT)`,
		`INSERT INTO models (name) VALUES ('first')`,
		`PRAGMA wal_checkpoint(TRUNCATE)`,
		// From here on, the rows and the new stamp are only in the -wal.
		`INSERT INTO models (name) VALUES ('second'), ('third')`,
		`UPDATE alembic_version SET version_num = 'e6bf9e067296'`,
		`CREATE TABLE model_files (id INTEGER PRIMARY KEY)`,
	} {
		if _, err := w.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if st, err := os.Stat(src + "-wal"); err != nil || st.Size() == 0 {
		t.Fatalf("the -wal should hold the latest rows (stat: %v)", err)
	}

	dst := filepath.Join(t.TempDir(), "database.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		copyFile(t, src+suffix, dst+suffix)
	}
	// The main file alone still says what the last checkpoint left.
	alone := filepath.Join(t.TempDir(), "database.db")
	copyFile(t, src, alone)
	if s, err := Inspect(alone, Options{CountRows: true}); err != nil || s.Rows["models"] != 1 || s.Revision != "004c73a5c09e" {
		t.Fatalf("main file alone: %+v, %v; want 1 row at 004c73a5c09e (the test setup is wrong)", s, err)
	}

	before := map[string]string{"": sha(t, dst), "-wal": sha(t, dst+"-wal")}
	s, err := Inspect(dst, Options{CountRows: true, Integrity: true})
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if s.Revision != "e6bf9e067296" {
		t.Errorf("Revision = %q, want e6bf9e067296 (from the -wal)", s.Revision)
	}
	if s.Rows["models"] != 3 {
		t.Errorf("models holds %d rows, want 3 (two only in the -wal)", s.Rows["models"])
	}
	if _, ok := s.Tables["model_files"]; !ok {
		t.Errorf("table model_files, created only in the -wal, is missing: %v", s.Tables)
	}
	for suffix, want := range before {
		if got := sha(t, dst+suffix); got != want {
			t.Errorf("Inspect modified database.db%s", suffix)
		}
	}
	// The writer still works: the copy took nothing from it.
	if _, err := w.Exec(`INSERT INTO models (name) VALUES ('fourth')`); err != nil {
		t.Errorf("writer after the copy: %v", err)
	}
}

func TestInspectDoesNotModifyTheFile(t *testing.T) {
	p := dbPath(t)
	corruptible(t, p)
	before := sha(t, p)
	if _, err := Inspect(p, Options{Integrity: true, CountRows: true}); err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if after := sha(t, p); after != before {
		t.Error("Inspect modified the database file")
	}
	entries, err := os.ReadDir(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "database.db" {
			t.Errorf("Inspect left %s beside a rollback-journal database", e.Name())
		}
	}
}
