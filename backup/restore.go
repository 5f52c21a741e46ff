package backup

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// staleCompanions are the files next to database.db that belong to the
// database being replaced. They are overwritten with empty files: SQLite
// replays nothing from an empty -wal, rebuilds an empty -shm, and never
// treats an empty -journal as hot. The Engine API cannot delete files, and
// an empty file is as good as none here.
var staleCompanions = []string{"database.db-wal", "database.db-shm", "database.db-journal"}

// Archive streams a tar of the backup's files, ready to be copied into a
// GPUStack data directory: the database, the secrets, and empty companions
// that neutralise the replaced database's -wal, -shm and -journal. A
// companion the backup holds itself (the -wal of a safety copy) is sent
// as it is instead. It verifies the backup first and refuses one that does
// not match its manifest.
func (s *Store) Archive(m Manifest) (io.ReadCloser, error) {
	if m.GetMethod() != plan.MethodSQLite {
		return nil, fmt.Errorf("backup %s is a %s backup, not a SQLite file", m.ID, m.GetMethod())
	}
	if err := s.Verify(m); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(s.writeArchive(pw, m))
	}()
	return pr, nil
}

func (s *Store) writeArchive(w io.Writer, m Manifest) error {
	tw := tar.NewWriter(w)
	mtime := time.Now()
	own := map[string]bool{}
	for _, f := range m.Files {
		if err := addFile(tw, filepath.Join(s.Path(m.ID), f.Name), f.Name, mtime); err != nil {
			return err
		}
		own[f.Name] = true
	}
	for _, name := range staleCompanions {
		if own[name] {
			// An empty entry after it would overwrite it when extracted.
			continue
		}
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: 0, ModTime: mtime, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("archive %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive backup %s: %w", m.ID, err)
	}
	return nil
}

func addFile(tw *tar.Writer, path, name string, mtime time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	mode := int64(0o644)
	if name != DatabaseName {
		mode = 0o600
	}
	hdr := &tar.Header{Name: name, Mode: mode, Size: st.Size(), ModTime: mtime, Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return nil
}
