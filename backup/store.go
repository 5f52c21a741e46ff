package backup

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/schema"
)

// SecretFiles are the small files next to the database that a restore
// needs to keep workers and sessions valid.
var SecretFiles = []string{"token", "jwt_secret_key"}

// Store is the backup directory of one deployment: <backup.dir>/<deployment>.
type Store struct {
	Dir string
}

// Open returns the store for a deployment under dir, creating it with mode
// 0700. It refuses a directory other users can write to.
func Open(dir, deployment string) (*Store, error) {
	path := filepath.Join(dir, deployment)
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("create backup directory: %w", err)
	}
	for _, p := range []string{dir, path} {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("backup directory: %w", err)
		}
		if st.Mode().Perm()&0o022 != 0 {
			return nil, fmt.Errorf("backup directory %s is writable by other users (mode %v); run chmod go-w %s", p, st.Mode().Perm(), p)
		}
	}
	s := &Store{Dir: path}
	s.removeStaleTemp()
	return s, nil
}

// removeStaleTemp deletes half-written backups left by an interrupted run.
// They were never renamed into place, so no listed backup is touched.
func (s *Store) removeStaleTemp() {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			os.RemoveAll(filepath.Join(s.Dir, e.Name()))
		}
	}
}

// Check verifies a finished backup database before it is accepted: it must
// be stamped with the expected revision and pass the schema probe.
type Check func(snap *schema.Snapshot) error

// Create turns the raw files copied out of a stopped container (raw holds
// database.db and maybe its -wal and -shm, plus SecretFiles) into a
// verified backup. The WAL is folded into one self-contained file with the
// online backup API; the result must pass integrity_check and check.
func (s *Store) Create(raw string, m Manifest, check Check) (*Manifest, error) {
	m.Verified = false
	if m.ID == "" {
		m.ID = NewID(m.Created, m.Revision)
	}
	return s.write(&m, func(tmp string) ([]string, error) {
		db := filepath.Join(tmp, DatabaseName)
		if err := selfContained(filepath.Join(raw, DatabaseName), db); err != nil {
			return nil, err
		}
		snap, err := schema.Inspect(db, schema.Options{Integrity: true, CountRows: true})
		if err != nil {
			return nil, fmt.Errorf("verify backup: %w", err)
		}
		if snap.Revision != m.Revision {
			return nil, fmt.Errorf("verify backup: revision read back is %q, want %q", snap.Revision, m.Revision)
		}
		if check != nil {
			if err := check(snap); err != nil {
				return nil, fmt.Errorf("verify backup: %w", err)
			}
		}
		m.Rows, m.Verified = snap.Rows, true
		secrets, err := copyPresent(raw, tmp, SecretFiles)
		return append([]string{DatabaseName}, secrets...), err
	})
}

// write fills a temporary directory with fill, which returns the names of
// the files it wrote, records their sizes and sha256 in the manifest, and
// moves the directory into place once everything is synced. On any error
// the temporary directory is removed and nothing is listed.
func (s *Store) write(m *Manifest, fill func(tmp string) ([]string, error)) (*Manifest, error) {
	m.Format = ManifestFormat
	final := filepath.Join(s.Dir, m.ID)
	if _, err := os.Stat(final); err == nil {
		return nil, fmt.Errorf("backup %s exists already", m.ID)
	}
	tmp := final + ".tmp"
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", tmp, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	names, err := fill(tmp)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		f, err := hashFile(filepath.Join(tmp, name))
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, f)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if err := writeFileSync(filepath.Join(tmp, ManifestName), append(data, '\n')); err != nil {
		return nil, err
	}
	if err := syncPath(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("move backup into place: %w", err)
	}
	ok = true
	if err := syncPath(s.Dir); err != nil {
		return nil, err
	}
	return m, nil
}

// copyPresent copies those of names that exist in src into dst and
// returns the ones it copied.
func copyPresent(src, dst string, names []string) ([]string, error) {
	var copied []string
	for _, name := range names {
		found, err := copyIfPresent(filepath.Join(src, name), filepath.Join(dst, name))
		if err != nil {
			return copied, err
		}
		if found {
			copied = append(copied, name)
		}
	}
	return copied, nil
}

// NewID names a backup by its UTC creation time and revision.
func NewID(t time.Time, revision string) string {
	rev := revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		rev = "empty"
	}
	return t.UTC().Format("20060102T150405.000Z") + "-" + rev
}

// selfContained copies the database at src (with the -wal beside it, if
// any) into one file at dst with SQLite's online backup API: pages are
// copied as SQLite sees them, WAL frames included, so dst needs no -wal.
func selfContained(src, dst string) error {
	// Read-write so that SQLite can read a -wal beside the copy.
	srcDB, err := sql.Open("sqlite3", uri(src)+"?_busy_timeout=5000")
	if err != nil {
		return fmt.Errorf("open copied database: %w", err)
	}
	defer srcDB.Close()
	dstDB, err := sql.Open("sqlite3", uri(dst))
	if err != nil {
		return fmt.Errorf("create backup file: %w", err)
	}
	defer dstDB.Close()
	ctx := context.Background()
	srcConn, err := srcDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open copied database: %w", err)
	}
	defer srcConn.Close()
	dstConn, err := dstDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("create backup file: %w", err)
	}
	defer dstConn.Close()
	err = dstConn.Raw(func(d any) error {
		return srcConn.Raw(func(s any) error {
			dc, ok1 := d.(*sqlite3.SQLiteConn)
			sc, ok2 := s.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("not a go-sqlite3 connection")
			}
			b, err := dc.Backup("main", sc, "main")
			if err != nil {
				return err
			}
			if _, err := b.Step(-1); err != nil {
				b.Close()
				return err
			}
			return b.Finish()
		})
	})
	if err != nil {
		return fmt.Errorf("write self-contained copy: %w", err)
	}
	// The copy keeps the source's WAL flag in its header; switch it to a
	// rollback journal so the file stands alone wherever it is opened.
	if _, err := dstConn.ExecContext(ctx, `PRAGMA journal_mode=DELETE`); err != nil {
		return fmt.Errorf("write self-contained copy: %w", err)
	}
	if err := os.Chmod(dst, 0o600); err != nil {
		return fmt.Errorf("write self-contained copy: %w", err)
	}
	return syncPath(dst)
}

// uri is path as a SQLite URI filename: a "?", "#" or "%" in a backup
// directory's name would otherwise cut the path short or be decoded.
func uri(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath()
}

func copyIfPresent(src, dst string) (bool, error) {
	in, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, fmt.Errorf("write %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return false, fmt.Errorf("write %s: %w", dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return false, fmt.Errorf("sync %s: %w", dst, err)
	}
	return true, out.Close()
}

// List returns the store's backups, newest first. Directories without a
// readable manifest are skipped.
func (s *Store) List() ([]Manifest, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []Manifest
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		m, err := readManifest(filepath.Join(s.Dir, e.Name()))
		if err != nil {
			continue
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

// Path is the directory of backup id.
func (s *Store) Path(id string) string { return filepath.Join(s.Dir, id) }

// Get reads one backup's manifest.
func (s *Store) Get(id string) (Manifest, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return Manifest{}, fmt.Errorf("invalid backup id %q", id)
	}
	m, err := readManifest(s.Path(id))
	if err != nil {
		return Manifest{}, fmt.Errorf("backup %s: %w", id, err)
	}
	return m, nil
}

// Verify checks a backup as it is on disk now: every file's size and
// sha256 match the manifest, and the database passes the check of its
// method (integrity_check for SQLite; see verifyContent for the others).
func (s *Store) Verify(m Manifest) error {
	for _, f := range m.Files {
		got, err := hashFile(filepath.Join(s.Path(m.ID), f.Name))
		if err != nil {
			return fmt.Errorf("backup %s: %w", m.ID, err)
		}
		if got.Size != f.Size || got.SHA256 != f.SHA256 {
			return fmt.Errorf("backup %s: %s does not match its manifest (sha256 %s…, want %s…): the file was changed or damaged",
				m.ID, f.Name, got.SHA256[:12], f.SHA256[:12])
		}
	}
	if err := s.verifyContent(m); err != nil {
		return fmt.Errorf("backup %s: %w", m.ID, err)
	}
	if m.GetMethod() != plan.MethodSQLite {
		return nil
	}
	snap, err := schema.Inspect(filepath.Join(s.Path(m.ID), DatabaseName), schema.Options{Integrity: true})
	if err != nil {
		return fmt.Errorf("backup %s: %w", m.ID, err)
	}
	if snap.Revision != m.Revision {
		return fmt.Errorf("backup %s: revision %q, manifest says %q", m.ID, snap.Revision, m.Revision)
	}
	return nil
}

// Prune deletes backups beyond the newest keep. Verified backups and
// safety copies are counted apart, so restores cannot push verified
// backups out. The newest verified backup of protectRevision (the revision
// deployed now) is always kept, even when it is older than the others. It
// returns the ids it removed.
func (s *Store) Prune(keep int, protectRevision string) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("prune: keep must be at least 1, got %d", keep)
	}
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	protected := ""
	for _, m := range list {
		if m.Verified && m.Revision == protectRevision {
			protected = m.ID
			break
		}
	}
	var removed []string
	seen := map[bool]int{}
	for _, m := range list {
		seen[m.Verified]++
		if seen[m.Verified] <= keep || m.ID == protected {
			continue
		}
		if err := os.RemoveAll(s.Path(m.ID)); err != nil {
			return removed, fmt.Errorf("prune backup %s: %w", m.ID, err)
		}
		removed = append(removed, m.ID)
	}
	return removed, nil
}

// CreateRaw keeps the files in raw exactly as they are (database.db, its
// -wal, SecretFiles), unverified: a safety copy of a database that may be
// damaged, taken before it is overwritten. It is listed like any backup,
// with Verified false, and never chosen by a rollback. The -shm is left
// out: it is an index SQLite rebuilds from the -wal, and any reader of the
// copy (Verify included) rewrites it, so a kept one would fail the next
// Verify.
func (s *Store) CreateRaw(raw string, m Manifest) (*Manifest, error) {
	m.Verified = false
	if m.ID == "" {
		m.ID = NewID(m.Created, m.Revision) + "-safety"
	}
	return s.write(&m, func(tmp string) ([]string, error) {
		return copyPresent(raw, tmp, append([]string{DatabaseName, DatabaseName + "-wal"}, SecretFiles...))
	})
}
