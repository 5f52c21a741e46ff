package backup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// File names of the backups written from a stream.
const (
	// PGFilesName is the tar of PGDATA with numeric owners and modes, its
	// entries rooted at PGFilesRoot.
	PGFilesName = "postgresql-data.tar"
	// PGFilesRoot is the top directory of the entries in PGFilesName.
	PGFilesRoot = "data"
	// PGDumpName is pg_dump's custom-format archive of database gpustack.
	PGDumpName = "gpustack.pgdump"
	// VolumeName is the tar of the whole data volume, entries relative to
	// its root ("./", "./postgresql/data/…").
	VolumeName = "data-volume.tar"
)

// PGSecretFiles are the small files of a v2 data directory a restore of
// its database needs: SecretFiles and the PostgreSQL root password.
var PGSecretFiles = append(append([]string{}, SecretFiles...), "postgres_root_pass")

// Stream describes a backup whose main file is written from a stream.
type Stream struct {
	Method plan.BackupMethod
	// Source is read to its end into the file Name.
	Name   string
	Source io.Reader
	// SecretsDir, when set, is a local directory holding copies of
	// secret files; those of PGSecretFiles present are kept.
	SecretsDir string
	// Check inspects the written file and fills what it learns into m. An
	// error refuses the backup: nothing is listed.
	Check func(path string, m *Manifest) error
	// Unverified marks a safety copy: kept as it is even when it would not
	// pass verification, listed with Verified false.
	Unverified bool
}

// CreateStream writes a backup from a stream (a pg-files or volume tar, a
// pg_dump) into a temporary directory, checks it, and moves it into place:
// a backup that is listed was complete and, unless Unverified, passed
// Check. Files are 0600 and synced before the rename, like every backup.
func (s *Store) CreateStream(m Manifest, st Stream) (*Manifest, error) {
	m.Verified = false
	m.Method = st.Method
	if m.ID == "" {
		m.ID = NewID(m.Created, m.Revision)
		if st.Unverified {
			m.ID += "-safety"
		}
	}
	return s.write(&m, func(tmp string) ([]string, error) {
		p := filepath.Join(tmp, st.Name)
		if err := writeStream(p, st.Source); err != nil {
			return nil, err
		}
		if st.Check != nil {
			if err := st.Check(p, &m); err != nil {
				if !st.Unverified {
					return nil, fmt.Errorf("verify backup: %w", err)
				}
			} else {
				m.Verified = !st.Unverified
			}
		} else {
			m.Verified = !st.Unverified
		}
		names := []string{st.Name}
		if st.SecretsDir != "" {
			secrets, err := copyPresent(st.SecretsDir, tmp, PGSecretFiles)
			if err != nil {
				return nil, err
			}
			names = append(names, secrets...)
		}
		return names, nil
	})
}

func writeStream(p string, src io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(p), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", p, err)
	}
	return nil
}

// PGArchive is what a tar of PGDATA holds.
type PGArchive struct {
	Root    string
	Version string
	Control PGControl
	Files   int
	Bytes   int64
	// UID, GID and Mode are those of the top directory.
	UID, GID int
	Mode     int64
}

// InspectPGArchive reads a tar of PGDATA (entries under one top
// directory) to its end: PG_VERSION and global/pg_control must be there,
// and pg_control must pass its CRC check.
func InspectPGArchive(r io.Reader) (PGArchive, error) {
	var a PGArchive
	tr := tar.NewReader(r)
	sawControl := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return a, fmt.Errorf("read the PGDATA archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return a, fmt.Errorf("the PGDATA archive holds %q, outside its directory", hdr.Name)
		}
		root, rel, _ := strings.Cut(name, "/")
		if a.Root == "" {
			a.Root = root
		} else if root != a.Root {
			return a, fmt.Errorf("the PGDATA archive holds %q outside %s/", hdr.Name, a.Root)
		}
		if rel == "" && hdr.Typeflag == tar.TypeDir {
			a.UID, a.GID, a.Mode = hdr.Uid, hdr.Gid, hdr.Mode&0o7777
		}
		if hdr.Typeflag == tar.TypeReg {
			a.Files++
			a.Bytes += hdr.Size
		}
		switch rel {
		case "PG_VERSION":
			b, err := io.ReadAll(io.LimitReader(tr, 64))
			if err != nil {
				return a, fmt.Errorf("read PG_VERSION: %w", err)
			}
			a.Version = strings.TrimSpace(string(b))
		case "global/pg_control":
			b, err := io.ReadAll(io.LimitReader(tr, 64<<10))
			if err != nil {
				return a, fmt.Errorf("read global/pg_control: %w", err)
			}
			if a.Control, err = ParsePGControl(b); err != nil {
				return a, err
			}
			sawControl = true
		}
	}
	if a.Version == "" {
		return a, fmt.Errorf("the PGDATA archive has no PG_VERSION")
	}
	if !sawControl {
		return a, fmt.Errorf("the PGDATA archive has no global/pg_control")
	}
	return a, nil
}

// CheckPGFiles is the check of a pg-files backup: the archive is complete,
// pg_control is intact and says the cluster was shut down cleanly, so the
// files are consistent without the WAL replay a torn copy would need.
func CheckPGFiles(p string, m *Manifest) error {
	a, err := inspectPGFile(p)
	if a.Version != "" {
		m.PGVersion = a.Version
	}
	if err != nil {
		return err
	}
	if !a.Control.Clean() {
		return fmt.Errorf("pg_control says the cluster is %s, not shut down cleanly: the copy is not consistent (was GPUStack killed rather than stopped?)", a.Control.State)
	}
	return nil
}

func inspectPGFile(p string) (PGArchive, error) {
	f, err := os.Open(p)
	if err != nil {
		return PGArchive{}, fmt.Errorf("read %s: %w", filepath.Base(p), err)
	}
	defer f.Close()
	return InspectPGArchive(f)
}

// CheckVolume is the check of a volume backup: the archive reads to its
// end, and a PGDATA inside it was shut down cleanly.
func CheckVolume(p string, m *Manifest) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(p), err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the volume archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("the volume archive holds %q, outside the volume", hdr.Name)
		}
		if m.PGDir != "" && name == m.PGDir+"/global/pg_control" {
			b, err := io.ReadAll(io.LimitReader(tr, 64<<10))
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			c, err := ParsePGControl(b)
			if err != nil {
				return err
			}
			if !c.Clean() {
				return fmt.Errorf("pg_control in the volume says the cluster is %s, not shut down cleanly", c.State)
			}
		}
	}
}

// pgDumpMagic starts every pg_dump custom-format archive.
const pgDumpMagic = "PGDMP"

// checkDumpHeader is the part of a pg-dump backup's check that needs no
// PostgreSQL: the file is a custom-format archive.
func checkDumpHeader(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(p), err)
	}
	defer f.Close()
	head := make([]byte, len(pgDumpMagic))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != pgDumpMagic {
		return fmt.Errorf("%s is not a pg_dump custom-format archive", filepath.Base(p))
	}
	return nil
}

// Reroot streams the tar r with the top directory of its entries renamed
// from from to to ("data" → "data.gsd-restore"); to = "." makes them
// relative. Entries outside from are refused.
func Reroot(r io.Reader, from, to string) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(reroot(r, pw, from, to))
	}()
	return pr
}

func reroot(r io.Reader, w io.Writer, from, to string) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	rename := func(name string) (string, error) {
		clean := path.Clean(strings.TrimPrefix(name, "./"))
		if clean == from {
			return to + "/", nil
		}
		rest, ok := strings.CutPrefix(clean, from+"/")
		if !ok {
			return "", fmt.Errorf("archive entry %q is outside %s/", name, from)
		}
		if to == "." {
			return "./" + rest, nil
		}
		return to + "/" + rest, nil
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if hdr.Name, err = rename(hdr.Name); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeDir && !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
		if hdr.Typeflag == tar.TypeLink {
			if hdr.Linkname, err = rename(hdr.Linkname); err != nil {
				return err
			}
		}
		hdr.Format = tar.FormatUnknown
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
	}
	return tw.Close()
}
