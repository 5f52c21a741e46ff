// Package backup keeps verified copies of GPUStack databases on the machine
// running gpustack-deploy: one directory per backup holding one
// self-contained SQLite file, the small secrets a restore needs, and a
// manifest that says what the copy is and proves it is intact.
//
// A backup is written into a temporary directory, synced and renamed into
// place, so a backup that is listed is complete. The package never deletes
// a backup except through Prune, which callers run only when the user's
// retention policy asks for it.
package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// ManifestFormat is the version of manifest.json.
const ManifestFormat = 1

// ManifestName is the manifest's file name inside a backup directory.
const ManifestName = "manifest.json"

// DatabaseName is the name of the database file inside a backup.
const DatabaseName = "database.db"

// Manifest describes one backup.
type Manifest struct {
	Format     int       `json:"format"`
	ID         string    `json:"id"`
	Deployment string    `json:"deployment"`
	Host       string    `json:"host"`
	Created    time.Time `json:"created"`
	// Reason says why the backup was taken ("before upgrade to v0.6.0", "on demand").
	Reason string `json:"reason"`
	// Version is the image tag that wrote the database; Image and ImageID the image.
	Version string `json:"version"`
	Image   string `json:"image"`
	ImageID string `json:"image_id,omitempty"`
	// Engine is the database engine ("sqlite", "embedded-postgresql").
	Engine string `json:"engine"`
	// Method is how the backup was taken and is restored; manifests
	// written before there was a choice have none and are MethodSQLite
	// (read it with GetMethod).
	Method plan.BackupMethod `json:"method,omitempty"`
	// PGDir is the PGDATA directory the backup came from, relative to the
	// data directory ("postgresql/data", or v2.0.0's "postgres/data"), and
	// PGVersion its PG_VERSION; empty for SQLite.
	PGDir     string           `json:"pg_dir,omitempty"`
	PGVersion string           `json:"pg_version,omitempty"`
	Revision  string           `json:"revision"`
	Rows      map[string]int64 `json:"rows"`
	Files     []File           `json:"files"`
	// Verified is true when integrity_check, the revision read back and
	// the schema probe all passed when the backup was written.
	Verified bool `json:"verified"`
}

// File is one file of a backup.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// GetMethod is the backup's method; a manifest without one is from the
// SQLite era.
func (m Manifest) GetMethod() plan.BackupMethod {
	if m.Method == "" {
		return plan.MethodSQLite
	}
	return m.Method
}

// Size is the total size of the backup's files.
func (m Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// TotalRows is the number of rows over all tables.
func (m Manifest) TotalRows() int64 {
	var n int64
	for _, r := range m.Rows {
		n += r
	}
	return n
}

func hashFile(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("hash %s: %w", path, err)
	}
	return File{Name: filepath.Base(path), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// writeFileSync writes data to path with mode 0600 and syncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

func readManifest(dir string) (Manifest, error) {
	var m Manifest
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return m, fmt.Errorf("read manifest: %w", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("decode manifest %s: %w", filepath.Join(dir, ManifestName), err)
	}
	if m.Format != ManifestFormat {
		return m, fmt.Errorf("manifest %s: format %d, want %d", filepath.Join(dir, ManifestName), m.Format, ManifestFormat)
	}
	return m, nil
}
