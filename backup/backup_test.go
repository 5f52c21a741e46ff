package backup

import (
	"archive/tar"
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/schema"
)

const (
	revOld = "004c73a5c09e"
	revNew = "e6bf9e067296"
)

// t0 is the creation time of the first backup of a test; later ones add minutes.
var t0 = time.Date(2026, 11, 28, 6, 17, 2, 0, time.UTC)

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

func exec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// stamp is the schema of a small GPUStack-like database at rev with
// n rows in models.
func stamp(rev string, n int) []string {
	stmts := []string{
		`CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)`,
		`INSERT INTO alembic_version VALUES ('` + rev + `')`,
		`CREATE TABLE models (id INTEGER PRIMARY KEY, name TEXT)`,
		`CREATE TABLE workers (id INTEGER PRIMARY KEY, name TEXT)`,
		`INSERT INTO workers (name) VALUES ('gpu-1')`,
	}
	for i := 0; i < n; i++ {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO models (name) VALUES ('model-%d')`, i))
	}
	return stmts
}

// rawDir builds what the executor copies out of a stopped container: a
// WAL-mode database.db whose last rows (n of models' rows) are only in
// database.db-wal, its -shm, and the two secrets. The writer is still open
// when the files are copied, as after a crash.
func rawDir(t *testing.T, rev string, n int) string {
	t.Helper()
	live := filepath.Join(t.TempDir(), "database.db")
	w := openDB(t, live)
	defer w.Close()
	var mode string
	if err := w.QueryRow(`PRAGMA journal_mode=WAL`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q (%v), want wal", mode, err)
	}
	exec(t, w, `PRAGMA wal_autocheckpoint=0`)
	exec(t, w, stamp(rev, 0)...)
	exec(t, w, `PRAGMA wal_checkpoint(TRUNCATE)`)
	for i := 0; i < n; i++ {
		exec(t, w, fmt.Sprintf(`INSERT INTO models (name) VALUES ('model-%d')`, i))
	}
	raw := t.TempDir()
	for _, name := range []string{"database.db", "database.db-wal", "database.db-shm"} {
		copyFile(t, filepath.Join(filepath.Dir(live), name), filepath.Join(raw, name))
	}
	writeFile(t, filepath.Join(raw, "token"), "worker-token-"+rev)
	writeFile(t, filepath.Join(raw, "jwt_secret_key"), "jwt-secret-"+rev)
	return raw
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "backups"), "prod")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func manifest(created time.Time, rev string) Manifest {
	return Manifest{
		Deployment: "prod", Host: "default", Created: created, Reason: "before v0.5.1-cpu",
		Version: "v0.4.1-cpu", Image: "gpustack/gpustack:v0.4.1-cpu", Engine: "sqlite", Revision: rev,
	}
}

func create(t *testing.T, s *Store, created time.Time, rev string, n int) *Manifest {
	t.Helper()
	m, err := s.Create(rawDir(t, rev, n), manifest(created, rev), nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return m
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestOpen(t *testing.T) {
	t.Run("creates private directories", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "backups")
		s, err := Open(dir, "prod")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if s.Dir != filepath.Join(dir, "prod") {
			t.Errorf("Dir = %s, want %s", s.Dir, filepath.Join(dir, "prod"))
		}
		for _, p := range []string{dir, s.Dir} {
			if got := perm(t, p); got != 0o700 {
				t.Errorf("%s has mode %v, want 0700", p, got)
			}
		}
	})
	for _, tt := range []struct {
		name string
		// chmod is applied to the backup dir (""), or to the deployment's.
		which string
		mode  os.FileMode
	}{
		{"backup dir writable by others", "", 0o777},
		{"backup dir writable by the group", "", 0o770},
		{"deployment dir writable by others", "prod", 0o703},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "backups")
			if err := os.MkdirAll(filepath.Join(dir, "prod"), 0o700); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, tt.which)
			if err := os.Chmod(target, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir, "prod")
			if err == nil || !strings.Contains(err.Error(), "writable by other users") || !strings.Contains(err.Error(), "chmod go-w "+target) {
				t.Fatalf("Open error = %v, want a refusal naming %s with its remedy", err, target)
			}
		})
	}
	t.Run("removes stale temporary backups", func(t *testing.T) {
		s := newStore(t)
		m := create(t, s, t0, revNew, 2)
		stale := filepath.Join(s.Dir, NewID(at(1), revNew)+".tmp")
		if err := os.MkdirAll(stale, 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(stale, DatabaseName), "half written")
		raw := filepath.Join(s.Dir, "raw-123.tmp")
		if err := os.MkdirAll(raw, 0o700); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(filepath.Dir(s.Dir), "prod")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if got, want := names(t, s2.Dir), []string{m.ID}; !reflect.DeepEqual(got, want) {
			t.Errorf("after Open the store holds %v, want %v", got, want)
		}
	})
}

func TestCreate(t *testing.T) {
	s := newStore(t)
	raw := rawDir(t, revNew, 3)
	m, err := s.Create(raw, manifest(t0, revNew), func(snap *schema.Snapshot) error {
		if _, ok := snap.Tables["models"]; !ok {
			return errors.New("no models table")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	wantID := "20261128T061702.000Z-" + revNew
	if m.ID != wantID {
		t.Errorf("ID = %s, want %s", m.ID, wantID)
	}
	if !m.Verified || m.Format != ManifestFormat || m.Revision != revNew {
		t.Errorf("manifest = %+v, want verified format %d at %s", m, ManifestFormat, revNew)
	}
	if want := map[string]int64{"alembic_version": 1, "models": 3, "workers": 1}; !reflect.DeepEqual(m.Rows, want) {
		t.Errorf("Rows = %v, want %v (models' rows were only in the -wal)", m.Rows, want)
	}
	dir := s.Path(m.ID)
	if got, want := names(t, dir), []string{DatabaseName, "jwt_secret_key", ManifestName, "token"}; !reflect.DeepEqual(got, want) {
		t.Errorf("backup holds %v, want %v (no -wal, no -shm)", got, want)
	}
	if got := perm(t, dir); got != 0o700 {
		t.Errorf("backup directory mode %v, want 0700", got)
	}
	for _, name := range names(t, dir) {
		if got := perm(t, filepath.Join(dir, name)); got != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, got)
		}
	}
	var files []string
	for _, f := range m.Files {
		files = append(files, f.Name)
		got, err := hashFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if got != f {
			t.Errorf("manifest says %+v, the file is %+v", f, got)
		}
	}
	if want := []string{DatabaseName, "token", "jwt_secret_key"}; !reflect.DeepEqual(files, want) {
		t.Errorf("manifest files %v, want %v", files, want)
	}
	if got := string(readFile(t, filepath.Join(dir, "token"))); got != "worker-token-"+revNew {
		t.Errorf("token = %q", got)
	}
	onDisk, err := s.Get(m.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !onDisk.Created.Equal(m.Created) {
		t.Errorf("manifest.json created %v, want %v", onDisk.Created, m.Created)
	}
	onDisk.Created = m.Created
	if !reflect.DeepEqual(onDisk, *m) {
		t.Errorf("manifest.json = %+v\nreturned     = %+v", onDisk, *m)
	}

	// Self-contained: the header says rollback journal (bytes 18 and 19
	// are 2 in WAL mode), and the database alone, moved elsewhere, holds
	// every row.
	if h := readFile(t, filepath.Join(dir, DatabaseName)); h[18] != 1 || h[19] != 1 {
		t.Errorf("backup database header read/write versions %d/%d, want 1/1 (not WAL)", h[18], h[19])
	}
	alone := filepath.Join(t.TempDir(), DatabaseName)
	copyFile(t, filepath.Join(dir, DatabaseName), alone)
	snap, err := schema.Inspect(alone, schema.Options{CountRows: true, Integrity: true})
	if err != nil {
		t.Fatalf("Inspect the copied backup: %v", err)
	}
	if snap.Rows["models"] != 3 || snap.Revision != revNew {
		t.Errorf("backup database alone: %d rows at %q, want 3 at %s", snap.Rows["models"], snap.Revision, revNew)
	}

	if _, err := s.Create(rawDir(t, revNew, 1), manifest(t0, revNew), nil); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("second Create with the same id: %v, want an error saying it exists", err)
	}
}

func TestCreateRefusesAndLeavesNothing(t *testing.T) {
	checkErr := errors.New("schema probe of e6bf9e067296 fails: missing table model_files")
	tests := []struct {
		name  string
		rev   string // stamped in the database
		check Check
		want  string
	}{
		{name: "revision mismatch", rev: revOld, want: `revision read back is "004c73a5c09e", want "e6bf9e067296"`},
		{name: "failing check", rev: revNew, check: func(*schema.Snapshot) error { return checkErr }, want: checkErr.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			_, err := s.Create(rawDir(t, tt.rev, 2), manifest(t0, revNew), tt.check)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Create error = %v, want one containing %q", err, tt.want)
			}
			if tt.check != nil && !errors.Is(err, checkErr) {
				t.Errorf("Create error %v does not wrap the check's error", err)
			}
			if left := names(t, s.Dir); len(left) != 0 {
				t.Errorf("a refused backup left %v in the store", left)
			}
		})
	}
	t.Run("damaged database", func(t *testing.T) {
		s := newStore(t)
		raw := t.TempDir()
		writeFile(t, filepath.Join(raw, DatabaseName), strings.Repeat("not a database ", 400))
		if _, err := s.Create(raw, manifest(t0, revNew), nil); err == nil {
			t.Fatal("Create accepted a file that is not a database")
		}
		if left := names(t, s.Dir); len(left) != 0 {
			t.Errorf("a refused backup left %v in the store", left)
		}
	})
}

// TestCreateOddBackupDir keeps backups under a directory whose name means
// something in a SQLite URI, as a user's backup.dir may.
func TestCreateOddBackupDir(t *testing.T) {
	for _, name := range []string{"my backups", "backups#2", "100%", "what?", "a%20b"} {
		t.Run(name, func(t *testing.T) { createIn(t, filepath.Join(t.TempDir(), name)) })
	}
}

func createIn(t *testing.T, dir string) {
	s, err := Open(dir, "prod")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// The executor copies the raw files into the store itself.
	raw, err := os.MkdirTemp(s.Dir, "raw-*.tmp")
	if err != nil {
		t.Fatal(err)
	}
	src := rawDir(t, revNew, 2)
	for _, name := range names(t, src) {
		copyFile(t, filepath.Join(src, name), filepath.Join(raw, name))
	}
	m, err := s.Create(raw, manifest(t0, revNew), nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if m.Rows["models"] != 2 {
		t.Errorf("models holds %d rows, want 2", m.Rows["models"])
	}
	if err := s.Verify(*m); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestListAndGet(t *testing.T) {
	s := newStore(t)
	// Created out of order: List sorts by time, not by creation order.
	b := create(t, s, at(10), revNew, 1)
	a := create(t, s, at(0), revOld, 1)
	c := create(t, s, at(20), revNew, 1)
	// Same time as c: the id breaks the tie, larger first.
	d := create(t, s, at(20), "f0f0f0f0f0f0", 0)
	if err := os.MkdirAll(filepath.Join(s.Dir, "no-manifest"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "bad-manifest"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.Dir, "bad-manifest", ManifestName), "{not json")
	writeFile(t, filepath.Join(s.Dir, "failed-20261128T061702Z-v0.5.1-cpu.log"), "a saved log")

	list, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var ids []string
	for _, m := range list {
		ids = append(ids, m.ID)
	}
	if want := []string{d.ID, c.ID, b.ID, a.ID}; !reflect.DeepEqual(ids, want) {
		t.Errorf("List = %v\nwant   %v", ids, want)
	}

	got, err := s.Get(b.ID)
	if err != nil || got.ID != b.ID || got.Revision != revNew {
		t.Errorf("Get(%s) = %+v, %v", b.ID, got, err)
	}
	for _, id := range []string{"", "..", "../prod/" + b.ID, "a/b", `a\b`, ".hidden", "/etc", "../../etc/passwd"} {
		if _, err := s.Get(id); err == nil || !strings.Contains(err.Error(), "invalid backup id") {
			t.Errorf("Get(%q) error = %v, want invalid backup id", id, err)
		}
	}
	for _, id := range []string{"no-manifest", "bad-manifest", "20990101T000000.000Z-e6bf9e067296"} {
		if _, err := s.Get(id); err == nil {
			t.Errorf("Get(%q) succeeded", id)
		}
	}
}

func flipByte(t *testing.T, path string, offset int) {
	t.Helper()
	b := readFile(t, path)
	b[offset] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	for _, tt := range []struct {
		file   string
		offset int
	}{
		{DatabaseName, 5000},
		{"token", 0},
		{"jwt_secret_key", 3},
	} {
		t.Run(tt.file, func(t *testing.T) {
			s := newStore(t)
			m := create(t, s, t0, revNew, 3)
			if err := s.Verify(*m); err != nil {
				t.Fatalf("Verify of a fresh backup: %v", err)
			}
			flipByte(t, filepath.Join(s.Path(m.ID), tt.file), tt.offset)
			err := s.Verify(*m)
			if err == nil || !strings.Contains(err.Error(), tt.file+" does not match its manifest") || !strings.Contains(err.Error(), m.ID) {
				t.Fatalf("Verify error = %v, want one naming %s and %s", err, m.ID, tt.file)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		s := newStore(t)
		m := create(t, s, t0, revNew, 1)
		if err := os.Remove(filepath.Join(s.Path(m.ID), "token")); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(*m); err == nil || !strings.Contains(err.Error(), "token") {
			t.Fatalf("Verify error = %v, want one naming token", err)
		}
	})
	t.Run("manifest revision disagrees", func(t *testing.T) {
		s := newStore(t)
		m := create(t, s, t0, revNew, 1)
		m.Revision = revOld
		if err := s.Verify(*m); err == nil || !strings.Contains(err.Error(), "manifest says") {
			t.Fatalf("Verify error = %v, want a revision disagreement", err)
		}
	})
}

// untar reads every entry of an archive, in order.
type entry struct {
	hdr  tar.Header
	data []byte
}

func untar(t *testing.T, r io.Reader) []entry {
	t.Helper()
	tr := tar.NewReader(r)
	var out []entry
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read archive: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{*hdr, data})
	}
}

// extract writes entries into dir as the engine's CopyToContainer does:
// in order, a later entry replacing an earlier file of the same name.
func extract(t *testing.T, entries []entry, dir string) {
	t.Helper()
	for _, e := range entries {
		if err := os.WriteFile(filepath.Join(dir, e.hdr.Name), e.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestArchive(t *testing.T) {
	s := newStore(t)
	m := create(t, s, t0, revNew, 4)
	rc, err := s.Archive(*m)
	if err != nil {
		t.Fatalf("Archive: %v", err)
	}
	entries := untar(t, rc)
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s %o %d", e.hdr.Name, e.hdr.Mode, len(e.data)))
	}
	dbSize := m.Files[0].Size
	want := []string{
		fmt.Sprintf("database.db 644 %d", dbSize),
		fmt.Sprintf("token 600 %d", len("worker-token-"+revNew)),
		fmt.Sprintf("jwt_secret_key 600 %d", len("jwt-secret-"+revNew)),
		"database.db-wal 644 0",
		"database.db-shm 644 0",
		"database.db-journal 644 0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("archive entries\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !bytes.Equal(entries[0].data, readFile(t, filepath.Join(s.Path(m.ID), DatabaseName))) {
		t.Error("the archived database.db differs from the backup's")
	}

	// Written over a data directory whose database has its own -wal, the
	// archive leaves exactly the backup: the empty -wal replays nothing.
	data := t.TempDir()
	other := rawDir(t, revOld, 9)
	for _, name := range names(t, other) {
		copyFile(t, filepath.Join(other, name), filepath.Join(data, name))
	}
	extract(t, entries, data)
	snap, err := schema.Inspect(filepath.Join(data, DatabaseName), schema.Options{CountRows: true, Integrity: true})
	if err != nil {
		t.Fatalf("Inspect the restored data directory: %v", err)
	}
	if snap.Revision != revNew || snap.Rows["models"] != 4 {
		t.Errorf("restored database at %q with %d models, want %s with 4", snap.Revision, snap.Rows["models"], revNew)
	}
	if got := string(readFile(t, filepath.Join(data, "token"))); got != "worker-token-"+revNew {
		t.Errorf("restored token = %q", got)
	}

	flipByte(t, filepath.Join(s.Path(m.ID), DatabaseName), 5000)
	rc, err = s.Archive(*m)
	if err == nil {
		rc.Close()
		t.Fatal("Archive of a damaged backup succeeded")
	}
	if !strings.Contains(err.Error(), "does not match its manifest") {
		t.Errorf("Archive error = %v, want the manifest mismatch", err)
	}
}

func TestPrune(t *testing.T) {
	// One store, rebuilt for each case: newest first it holds
	// s3 v4 s2 v3 v2 s1 v1 (v verified, s safety copies).
	build := func(t *testing.T) (*Store, map[string]string) {
		s := newStore(t)
		ids := map[string]string{}
		ids["v1"] = create(t, s, at(0), revOld, 1).ID
		ids["v2"] = create(t, s, at(10), revOld, 1).ID
		ids["v3"] = create(t, s, at(20), revNew, 1).ID
		ids["v4"] = create(t, s, at(30), revNew, 1).ID
		for name, minutes := range map[string]int{"s1": 5, "s2": 25, "s3": 40} {
			m, err := s.CreateRaw(rawDir(t, revOld, 1), manifest(at(minutes), revOld))
			if err != nil {
				t.Fatalf("CreateRaw: %v", err)
			}
			ids[name] = m.ID
		}
		return s, ids
	}
	tests := []struct {
		name    string
		keep    int
		protect string
		removed []string // in List order, newest first
	}{
		{name: "keep 2, protect the newest revision", keep: 2, protect: revNew, removed: []string{"v2", "s1", "v1"}},
		{name: "keep 2, protect an older revision", keep: 2, protect: revOld, removed: []string{"s1", "v1"}},
		{name: "keep 1 protects the newest of the old revision", keep: 1, protect: revOld, removed: []string{"s2", "v3", "s1", "v1"}},
		{name: "keep 1, protect the newest", keep: 1, protect: revNew, removed: []string{"s2", "v3", "v2", "s1", "v1"}},
		{name: "safety copies are never protected", keep: 1, protect: "ffffffffffff", removed: []string{"s2", "v3", "v2", "s1", "v1"}},
		{name: "keep more than there are", keep: 10, protect: revNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ids := build(t)
			removed, err := s.Prune(tt.keep, tt.protect)
			if err != nil {
				t.Fatalf("Prune: %v", err)
			}
			var want []string
			for _, n := range tt.removed {
				want = append(want, ids[n])
			}
			if !reflect.DeepEqual(removed, want) {
				t.Errorf("removed %v\nwant    %v", removed, want)
			}
			list, err := s.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(list)+len(removed) != 7 {
				t.Errorf("%d backups left after removing %d of 7", len(list), len(removed))
			}
			for _, id := range removed {
				if _, err := os.Stat(s.Path(id)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s still on disk (%v)", id, err)
				}
			}
		})
	}
	t.Run("keep 0 refused", func(t *testing.T) {
		s, _ := build(t)
		if _, err := s.Prune(0, revNew); err == nil {
			t.Fatal("Prune(0) succeeded")
		}
		if list, _ := s.List(); len(list) != 7 {
			t.Errorf("Prune(0) left %d of 7 backups", len(list))
		}
	})
}

func TestCreateRaw(t *testing.T) {
	s := newStore(t)
	raw := rawDir(t, revOld, 5)
	// A safety copy keeps a damaged database as found.
	flipByte(t, filepath.Join(raw, DatabaseName), 100)
	in := manifest(at(3), revOld)
	in.Verified = true
	m, err := s.CreateRaw(raw, in)
	if err != nil {
		t.Fatalf("CreateRaw: %v", err)
	}
	if m.Verified {
		t.Error("a safety copy is marked verified")
	}
	if want := NewID(at(3), revOld) + "-safety"; m.ID != want {
		t.Errorf("ID = %s, want %s", m.ID, want)
	}
	dir := s.Path(m.ID)
	for _, f := range m.Files {
		if !bytes.Equal(readFile(t, filepath.Join(dir, f.Name)), readFile(t, filepath.Join(raw, f.Name))) {
			t.Errorf("%s differs from the file it copies", f.Name)
		}
		if got := perm(t, filepath.Join(dir, f.Name)); got != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f.Name, got)
		}
	}
	var kept []string
	for _, f := range m.Files {
		kept = append(kept, f.Name)
	}
	// The -shm is an index SQLite rebuilds from the -wal; readers rewrite it.
	if want := []string{DatabaseName, "database.db-wal", "token", "jwt_secret_key"}; !reflect.DeepEqual(kept, want) {
		t.Errorf("safety copy keeps %v, want %v", kept, want)
	}
	onDisk, err := s.Get(m.ID)
	if err != nil || onDisk.Verified || len(onDisk.Files) != len(m.Files) {
		t.Errorf("Get = %+v, %v; want the unverified manifest", onDisk, err)
	}
}

// TestSafetyCopyRoundTrip restores a safety copy of a database whose last
// rows are only in its -wal: it must verify more than once (the CLI verifies,
// then Archive does) and bring back every row.
func TestSafetyCopyRoundTrip(t *testing.T) {
	s := newStore(t)
	m, err := s.CreateRaw(rawDir(t, revOld, 5), manifest(at(3), revOld))
	if err != nil {
		t.Fatalf("CreateRaw: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := s.Verify(*m); err != nil {
			t.Fatalf("Verify #%d: %v", i+1, err)
		}
	}
	rc, err := s.Archive(*m)
	if err != nil {
		t.Fatalf("Archive: %v", err)
	}
	entries := untar(t, rc)
	rc.Close()
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.hdr.Name] {
			t.Errorf("the archive holds %s twice; the later entry would replace the first", e.hdr.Name)
		}
		seen[e.hdr.Name] = true
	}
	if !seen["database.db-journal"] || !seen["database.db-shm"] {
		t.Errorf("the archive does not neutralise the replaced -journal and -shm: %v", seen)
	}
	// Over a data directory holding another database and its own -wal.
	data := t.TempDir()
	other := rawDir(t, revNew, 9)
	for _, name := range names(t, other) {
		copyFile(t, filepath.Join(other, name), filepath.Join(data, name))
	}
	extract(t, entries, data)
	snap, err := schema.Inspect(filepath.Join(data, DatabaseName), schema.Options{CountRows: true, Integrity: true})
	if err != nil {
		t.Fatalf("Inspect the restored safety copy: %v", err)
	}
	if snap.Rows["models"] != 5 {
		t.Errorf("restored safety copy holds %d models, want 5 (the rows in its -wal were lost)", snap.Rows["models"])
	}
}
