package backup

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// pgControl crafts a global/pg_control of PG_CONTROL_FILE_SIZE bytes with
// the given state and its CRC-32C at crcOffset (296 is PostgreSQL 15's
// sizeof(ControlFileData) less the crc field).
func pgControl(state PGState, crcOffset int) []byte {
	b := make([]byte, 8192)
	binary.LittleEndian.PutUint64(b[0:], 7312345678901234567)
	binary.LittleEndian.PutUint32(b[8:], 1300)
	binary.LittleEndian.PutUint32(b[12:], 202209061)
	binary.LittleEndian.PutUint32(b[16:], uint32(state))
	for i := 24; i < crcOffset; i++ {
		b[i] = byte(i * 7)
	}
	crc := crc32.Checksum(b[:crcOffset], crc32.MakeTable(crc32.Castagnoli))
	binary.LittleEndian.PutUint32(b[crcOffset:], crc)
	return b
}

func TestParsePGControl(t *testing.T) {
	for _, off := range []int{296, 312} {
		c, err := ParsePGControl(pgControl(PGShutdowned, off))
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		if !c.Clean() || c.CRCOffset != off || c.ControlVersion != 1300 || c.SystemID != 7312345678901234567 {
			t.Errorf("offset %d: got %+v", off, c)
		}
	}
	c, err := ParsePGControl(pgControl(PGInProduction, 296))
	if err != nil {
		t.Fatal(err)
	}
	if c.Clean() || c.State.String() != "in production" {
		t.Errorf("a running cluster's pg_control reads %+v (%s)", c, c.State)
	}
	if c, _ := ParsePGControl(pgControl(PGShutdownedRecovery, 296)); !c.Clean() {
		t.Errorf("shut down in recovery is a clean state")
	}
	damaged := pgControl(PGShutdowned, 296)
	damaged[100] ^= 0xff
	if _, err := ParsePGControl(damaged); err == nil || !strings.Contains(err.Error(), "CRC") {
		t.Errorf("a damaged pg_control passed: %v", err)
	}
	if _, err := ParsePGControl(make([]byte, 10)); err == nil {
		t.Errorf("a 10-byte pg_control passed")
	}
	if _, err := ParsePGControl(make([]byte, 8192)); err == nil {
		t.Errorf("a zeroed pg_control passed")
	}
}

// pgdataTar is a tar of a small PGDATA rooted at data/, owned by 9999.
func pgdataTar(t *testing.T, control []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, typ byte, mode int64, body []byte) {
		hdr := &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: int64(len(body)), Uid: 9999, Gid: 9999, ModTime: time.Unix(1e9, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	add("data/", tar.TypeDir, 0o700, nil)
	add("data/PG_VERSION", tar.TypeReg, 0o600, []byte("15\n"))
	add("data/global/", tar.TypeDir, 0o700, nil)
	if control != nil {
		add("data/global/pg_control", tar.TypeReg, 0o600, control)
	}
	add("data/base/1/1259", tar.TypeReg, 0o600, bytes.Repeat([]byte{1}, 8192))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestInspectPGArchive(t *testing.T) {
	a, err := InspectPGArchive(bytes.NewReader(pgdataTar(t, pgControl(PGShutdowned, 296))))
	if err != nil {
		t.Fatal(err)
	}
	if a.Root != "data" || a.Version != "15" || a.UID != 9999 || a.Mode != 0o700 || a.Files != 3 || !a.Control.Clean() {
		t.Errorf("got %+v", a)
	}
	if _, err := InspectPGArchive(bytes.NewReader(pgdataTar(t, nil))); err == nil {
		t.Errorf("an archive without pg_control passed")
	}
	truncated := pgdataTar(t, pgControl(PGShutdowned, 296))
	if _, err := InspectPGArchive(bytes.NewReader(truncated[:len(truncated)/2])); err == nil {
		t.Errorf("a truncated archive passed")
	}
}

func TestCreateStreamPGFiles(t *testing.T) {
	s, err := Open(t.TempDir(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	secrets := t.TempDir()
	for _, name := range PGSecretFiles {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	created := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	m, err := s.CreateStream(Manifest{Deployment: "prod", Created: created, Revision: "c4d7e8f9a0b1", Engine: "embedded-postgresql", PGDir: "postgresql/data", Rows: map[string]int64{"models": 3}},
		Stream{Method: plan.MethodPGFiles, Name: PGFilesName, Source: bytes.NewReader(pgdataTar(t, pgControl(PGShutdowned, 296))), SecretsDir: secrets, Check: CheckPGFiles})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Verified || m.Method != plan.MethodPGFiles || m.PGVersion != "15" || len(m.Files) != 4 {
		t.Errorf("manifest %+v", m)
	}
	for _, f := range append(m.Files, File{Name: ManifestName}) {
		st, err := os.Stat(filepath.Join(s.Path(m.ID), f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f.Name, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(s.Path(m.ID)); st.Mode().Perm() != 0o700 {
		t.Errorf("backup directory has mode %v, want 0700", st.Mode().Perm())
	}
	if err := s.Verify(*m); err != nil {
		t.Errorf("Verify: %v", err)
	}
	got, err := s.Get(m.ID)
	if err != nil || got.GetMethod() != plan.MethodPGFiles || got.PGDir != "postgresql/data" {
		t.Errorf("Get: %+v %v", got, err)
	}

	// The archive streamed for a restore is rerooted and complete.
	rc, err := s.PGFilesArchive(*m, "data.gsd-restore")
	if err != nil {
		t.Fatal(err)
	}
	a, err := InspectPGArchive(rc)
	rc.Close()
	if err != nil || a.Root != "data.gsd-restore" || a.UID != 9999 || a.Files != 3 {
		t.Errorf("rerooted archive: %+v %v", a, err)
	}

	// A torn copy of a running cluster is refused and nothing is listed.
	_, err = s.CreateStream(Manifest{Deployment: "prod", Created: created.Add(time.Second), Revision: "c4d7e8f9a0b1"},
		Stream{Method: plan.MethodPGFiles, Name: PGFilesName, Source: bytes.NewReader(pgdataTar(t, pgControl(PGInProduction, 296))), Check: CheckPGFiles})
	if err == nil || !strings.Contains(err.Error(), "not shut down cleanly") {
		t.Errorf("a copy of a running cluster was accepted: %v", err)
	}
	// The same copy is kept as an unverified safety copy.
	safety, err := s.CreateStream(Manifest{Deployment: "prod", Created: created.Add(2 * time.Second), Revision: "c4d7e8f9a0b1"},
		Stream{Method: plan.MethodPGFiles, Name: PGFilesName, Source: bytes.NewReader(pgdataTar(t, pgControl(PGInProduction, 296))), Check: CheckPGFiles, Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	if safety.Verified || !strings.HasSuffix(safety.ID, "-safety") {
		t.Errorf("safety copy %+v", safety)
	}
	if err := s.Verify(*safety); err != nil {
		t.Errorf("Verify of the safety copy: %v", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List: %d backups, %v", len(list), err)
	}

	// A changed byte is caught by Verify.
	p := filepath.Join(s.Path(m.ID), PGFilesName)
	b, _ := os.ReadFile(p)
	b[len(b)/3] ^= 1
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(*m); err == nil {
		t.Errorf("a damaged pg-files backup verified")
	}
}

func TestCreateStreamFailedSourceListsNothing(t *testing.T) {
	s, err := Open(t.TempDir(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("PGDMP partial"))
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}()
	if _, err := s.CreateStream(Manifest{Deployment: "prod", Revision: "r"}, Stream{Method: plan.MethodPGDump, Name: PGDumpName, Source: pr}); err == nil {
		t.Fatal("a broken stream was accepted")
	}
	entries, _ := os.ReadDir(s.Dir)
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestOldManifestIsSQLite(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "prod")
	if err != nil {
		t.Fatal(err)
	}
	old := `{"format":1,"id":"20250101T000000.000Z-004c73a5c09e","deployment":"prod","engine":"sqlite","revision":"004c73a5c09e","verified":true}`
	if err := os.MkdirAll(s.Path("20250101T000000.000Z-004c73a5c09e"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Path("20250101T000000.000Z-004c73a5c09e"), ManifestName), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := s.Get("20250101T000000.000Z-004c73a5c09e")
	if err != nil {
		t.Fatal(err)
	}
	if m.GetMethod() != plan.MethodSQLite {
		t.Errorf("an old manifest reads as %q", m.GetMethod())
	}
	b, _ := json.Marshal(m)
	if strings.Contains(string(b), `"method"`) {
		t.Errorf("re-encoding an old manifest adds a method: %s", b)
	}
}

func TestRerootRelative(t *testing.T) {
	rc := Reroot(bytes.NewReader(pgdataTar(t, pgControl(PGShutdowned, 296))), "data", ".")
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Uid != 9999 {
			t.Errorf("%s lost its owner", hdr.Name)
		}
	}
	want := "./ ./PG_VERSION ./global/ ./global/pg_control ./base/1/1259"
	if strings.Join(names, " ") != want {
		t.Errorf("names %v, want %s", names, want)
	}
	bad := Reroot(bytes.NewReader(pgdataTar(t, nil)), "other", ".")
	defer bad.Close()
	if _, err := io.ReadAll(bad); err == nil {
		t.Errorf("entries outside the root were passed on")
	}
}
