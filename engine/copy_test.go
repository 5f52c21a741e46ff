package engine

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// ent is one tar entry to write; data is the content of regular files.
type ent struct {
	name string
	typ  byte
	link string
	data string
}

func dir(name string) ent               { return ent{name: name, typ: tar.TypeDir} }
func file(name, data string) ent        { return ent{name: name, typ: tar.TypeReg, data: data} }
func symlink(name, target string) ent   { return ent{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) ent  { return ent{name: name, typ: tar.TypeLink, link: target} }
func special(name string, typ byte) ent { return ent{name: name, typ: typ} }

func archive(t *testing.T, entries ...ent) *tar.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.data))}
		if e.typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write %s: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatalf("write %s: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return tar.NewReader(&buf)
}

// truncated is an archive whose only file, name, announces 100 bytes and
// carries 10.
func truncated(t *testing.T, name string) *tar.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	// No Close: the stream ends in the middle of the file.
	return tar.NewReader(&buf)
}

// tree lists every path under root with its type and content, sorted.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case rel == ".":
		case info.IsDir():
			out = append(out, rel+"/")
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, rel+"="+string(b))
		default:
			out = append(out, rel+" "+info.Mode().Type().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestExtractTree(t *testing.T) {
	parent := t.TempDir()
	dst := filepath.Join(parent, "copy")
	tr := archive(t,
		dir("gpustack/"),
		file("gpustack/database.db", "sqlite"),
		file("./gpustack/token", "secret"),
		dir("gpustack/log/"),
		file("gpustack/log/server.log", "started"),
		// A file whose directory has no entry of its own.
		file("gpustack/cache/hub/blobs/abc", "blob"),
		// Links that stay inside are left out, not refused.
		symlink("gpustack/cache/hub/snapshots/model", "../blobs/abc"),
		symlink("gpustack/current.log", "log/server.log"),
		hardlink("gpustack/token.bak", "gpustack/token"),
		// Devices and fifos have no place in a copy; they are skipped.
		special("gpustack/null", tar.TypeChar),
		special("gpustack/disk", tar.TypeBlock),
		special("gpustack/pipe", tar.TypeFifo),
	)
	if err := ExtractTree(tr, "gpustack", dst); err != nil {
		t.Fatalf("ExtractTree: %v", err)
	}
	want := []string{
		"cache/",
		"cache/hub/",
		"cache/hub/blobs/",
		"cache/hub/blobs/abc=blob",
		"database.db=sqlite",
		"log/",
		"log/server.log=started",
		"token=secret",
	}
	if got := tree(t, dst); !reflect.DeepEqual(got, want) {
		t.Errorf("extracted\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	st, err := os.Stat(filepath.Join(dst, "database.db"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("database.db has mode %v, want 0600 whatever the archive says", st.Mode().Perm())
	}
}

func TestExtractTreeRefusesEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries []ent
		want    string
	}{
		{"parent component", []ent{file("../evil", "x")}, "escapes the target"},
		{"parent component under the root", []ent{file("gpustack/../../evil", "x")}, "escapes the target"},
		{"dot-dot alone", []ent{dir("..")}, "escapes the target"},
		{"absolute name", []ent{file("/evil", "x")}, "escapes the target"},
		{"absolute name under the root", []ent{file("/gpustack/evil", "x")}, "escapes the target"},
		{"sibling of the root", []ent{file("other/evil", "x")}, "is outside"},
		{"root prefix only", []ent{file("gpustack-evil/x", "x")}, "is outside"},
		{"back out of the root", []ent{dir("gpustack/"), file("gpustack/../evil", "x")}, "is outside"},
		{"relative symlink outside", []ent{dir("gpustack/"), symlink("gpustack/link", "../../evil")}, "links outside"},
		{"relative symlink outside from a subdirectory", []ent{symlink("gpustack/a/b/link", "../../../../evil")}, "links outside"},
		{"absolute symlink", []ent{symlink("gpustack/link", "/etc/passwd")}, "links outside"},
		{"hard link outside", []ent{hardlink("gpustack/link", "../evil")}, "links outside"},
		{"hard link absolute", []ent{hardlink("gpustack/link", "/etc/passwd")}, "links outside"},
		{"hard link to a sibling", []ent{hardlink("gpustack/link", "other/file")}, "links outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "a", "copy")
			err := ExtractTree(archive(t, tt.entries...), "gpustack", dst)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ExtractTree error = %v, want one containing %q", err, tt.want)
			}
			if got := tree(t, parent); !reflect.DeepEqual(got, []string{"a/", "a/copy/"}) {
				t.Errorf("the temporary directory holds %v, want only a/copy/", got)
			}
		})
	}
}

func TestExtractTreeBadStreams(t *testing.T) {
	t.Run("short file", func(t *testing.T) {
		err := ExtractTree(truncated(t, "gpustack/database.db"), "gpustack", filepath.Join(t.TempDir(), "copy"))
		if err == nil {
			t.Fatal("ExtractTree of a truncated stream succeeded")
		}
	})
	t.Run("not a tar stream", func(t *testing.T) {
		tr := tar.NewReader(strings.NewReader(strings.Repeat("garbage ", 100)))
		if err := ExtractTree(tr, "gpustack", filepath.Join(t.TempDir(), "copy")); err == nil {
			t.Fatal("ExtractTree of garbage succeeded")
		}
	})
	t.Run("the same file twice", func(t *testing.T) {
		tr := archive(t, file("gpustack/token", "one"), file("gpustack/token", "two"))
		dst := filepath.Join(t.TempDir(), "copy")
		if err := ExtractTree(tr, "gpustack", dst); err == nil {
			t.Fatal("ExtractTree overwrote a file it had written")
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "token")); string(b) != "one" {
			t.Errorf("token = %q, want the first entry's", b)
		}
	})
	t.Run("an existing file is not replaced", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "copy")
		outside := filepath.Join(t.TempDir(), "outside")
		if err := os.WriteFile(outside, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dst, 0o700); err != nil {
			t.Fatal(err)
		}
		// A symlink already in dst must not carry a write elsewhere.
		if err := os.Symlink(outside, filepath.Join(dst, "token")); err != nil {
			t.Fatal(err)
		}
		if err := ExtractTree(archive(t, file("gpustack/token", "evil")), "gpustack", dst); err == nil {
			t.Fatal("ExtractTree wrote through an existing symlink")
		}
		if b, _ := os.ReadFile(outside); string(b) != "keep" {
			t.Errorf("the file outside holds %q", b)
		}
	})
}

func TestExtractSingleFile(t *testing.T) {
	t.Run("regular file", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "database.db")
		if err := os.WriteFile(dst, []byte("an older and longer copy"), 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := extractSingleFile(archive(t, file("database.db", "sqlite")), "database.db", dst)
		if err != nil || n != 6 {
			t.Fatalf("extractSingleFile = %d, %v; want 6, nil", n, err)
		}
		if b, _ := os.ReadFile(dst); string(b) != "sqlite" {
			t.Errorf("dst holds %q, want %q", b, "sqlite")
		}
	})
	tests := []struct {
		name string
		tr   func(t *testing.T) *tar.Reader
		want string
	}{
		{"wrong name", func(t *testing.T) *tar.Reader { return archive(t, file("token", "x")) }, `archive holds "token", want "database.db"`},
		{"path instead of a name", func(t *testing.T) *tar.Reader { return archive(t, file("../database.db", "x")) }, "want \"database.db\""},
		{"directory", func(t *testing.T) *tar.Reader { return archive(t, dir("database.db/")) }, "not a regular file"},
		{"symlink", func(t *testing.T) *tar.Reader { return archive(t, symlink("database.db", "/etc/passwd")) }, "not a regular file"},
		{"hard link", func(t *testing.T) *tar.Reader { return archive(t, hardlink("database.db", "/etc/passwd")) }, "not a regular file"},
		{"device", func(t *testing.T) *tar.Reader { return archive(t, special("database.db", tar.TypeChar)) }, "not a regular file"},
		{"short stream", func(t *testing.T) *tar.Reader { return truncated(t, "database.db") }, "database.db"},
		{"empty stream", func(t *testing.T) *tar.Reader { return archive(t) }, "read archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			_, err := extractSingleFile(tt.tr(t), "database.db", filepath.Join(parent, "database.db"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("extractSingleFile error = %v, want one containing %q", err, tt.want)
			}
			if tt.name != "short stream" {
				if got := tree(t, parent); len(got) != 0 {
					t.Errorf("a refused entry left %v", got)
				}
			}
		})
	}
}
