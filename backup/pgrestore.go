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

// verifyContent is the method-specific part of Verify for backups written
// from a stream. A pg-files backup must hold a complete PGDATA whose
// pg_control is intact, and, when it was verified, cleanly shut down; a
// pg-dump must be a custom-format archive; a volume archive must read to
// its end.
func (s *Store) verifyContent(m Manifest) error {
	dir := s.Path(m.ID)
	switch m.GetMethod() {
	case plan.MethodSQLite:
		return nil
	case plan.MethodPGFiles:
		if m.Verified {
			return CheckPGFiles(filepath.Join(dir, PGFilesName), &m)
		}
		_, err := inspectPGFile(filepath.Join(dir, PGFilesName))
		return err
	case plan.MethodPGDump:
		return checkDumpHeader(filepath.Join(dir, PGDumpName))
	case plan.MethodExternalDump:
		return s.externalDumpCheck(m)
	case plan.MethodVolume:
		if !m.Verified {
			m.PGDir = ""
		}
		return CheckVolume(filepath.Join(dir, VolumeName), &m)
	default:
		return fmt.Errorf("unknown backup method %q", m.Method)
	}
}

// Open verifies backup m and opens its file name (PGFilesName, PGDumpName,
// VolumeName) for a restore. The caller closes it.
func (s *Store) Open(m Manifest, name string) (io.ReadCloser, error) {
	if err := s.Verify(m); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(s.Path(m.ID), name))
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", m.ID, err)
	}
	return f, nil
}

// PGFilesArchive verifies a pg-files backup and streams its PGDATA tar
// with the top directory renamed to root, ready to be copied next to the
// live PGDATA with CopyInOwned and swapped in.
func (s *Store) PGFilesArchive(m Manifest, root string) (io.ReadCloser, error) {
	if m.GetMethod() != plan.MethodPGFiles {
		return nil, fmt.Errorf("backup %s is a %s backup, not pg-files", m.ID, m.GetMethod())
	}
	f, err := s.Open(m, PGFilesName)
	if err != nil {
		return nil, err
	}
	rc := Reroot(f, PGFilesRoot, root)
	return readCloser{rc, func() error { rc.Close(); return f.Close() }}, nil
}

// SecretsArchive streams a tar of the secret files the backup holds
// (token, jwt_secret_key, postgres_root_pass), mode 0600, to be copied
// into the data directory. It is empty when the backup holds none.
func (s *Store) SecretsArchive(m Manifest) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		own := map[string]bool{}
		for _, f := range m.Files {
			own[f.Name] = true
		}
		mtime := time.Now()
		for _, name := range PGSecretFiles {
			if !own[name] {
				continue
			}
			if err := addFile(tw, filepath.Join(s.Path(m.ID), name), name, mtime); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	return pr
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }
