package engine

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzMaxSize bounds what one fuzz input may announce: a tar header alone
// can announce exabytes, and the fuzzer must not fill the disk finding
// out whether they would be written. Below it, the check that ExtractTree
// never writes more than the stream carries finds such bombs.
const fuzzMaxSize = 16 << 20

// FuzzExtractTree unpacks arbitrary bytes as a tar stream into
// parent/a/copy. Whatever the stream holds, and whether ExtractTree
// succeeds or not, nothing may appear outside parent/a/copy, nothing but
// directories and regular files may appear inside it, no more bytes than
// the stream holds are written (a sparse entry's holes would), and when it
// succeeds every regular file of the archive under the root is there
// with its content. The checked-in corpus is testdata/fuzz/FuzzExtractTree.
func FuzzExtractTree(f *testing.F) {
	for _, entries := range [][]ent{
		{dir("gpustack/"), file("gpustack/database.db", "SQLite format 3\x00"), file("gpustack/token", "t")},
		{dir("gpustack/"), dir("gpustack/postgresql/data/"), file("gpustack/postgresql/data/PG_VERSION", "17\n")},
		{file("../evil", "x")},
		{file("gpustack/../../evil", "x")},
		{symlink("gpustack/link", "../../evil"), file("gpustack/link/x", "x")},
		{hardlink("gpustack/link", "other/file")},
		{file("gpustack/a", "1"), file("gpustack/a/b", "2")},
		{special("gpustack/fifo", tar.TypeFifo)},
	} {
		f.Add(tarBytes(f, entries))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if announced(data) > fuzzMaxSize {
			t.Skip("the archive announces more than the fuzz limit")
		}
		parent := t.TempDir()
		dst := filepath.Join(parent, "a", "copy")
		err := ExtractTree(tar.NewReader(bytes.NewReader(data)), "gpustack", dst)

		// Nothing outside dst, only directories and regular files inside.
		var written int64
		err2 := filepath.Walk(parent, func(p string, info os.FileInfo, werr error) error {
			if werr != nil {
				return werr
			}
			rel, rerr := filepath.Rel(parent, p)
			if rerr != nil {
				return rerr
			}
			switch {
			case rel == "." || rel == "a" || rel == filepath.Join("a", "copy"):
				if !info.IsDir() {
					t.Fatalf("%s is %v, not a directory", rel, info.Mode())
				}
			case !strings.HasPrefix(rel, filepath.Join("a", "copy")+string(filepath.Separator)):
				t.Fatalf("ExtractTree (err %v) wrote %s, outside the target", err, rel)
			case !info.IsDir() && !info.Mode().IsRegular():
				t.Fatalf("ExtractTree (err %v) made %s a %v", err, rel, info.Mode().Type())
			case info.Mode().Perm()&0o077 != 0:
				t.Fatalf("ExtractTree (err %v) made %s readable by others: %v", err, rel, info.Mode().Perm())
			case info.Mode().IsRegular():
				written += info.Size()
			}
			return nil
		})
		if err2 != nil {
			t.Fatalf("walk: %v", err2)
		}
		if written > int64(len(data)) {
			t.Fatalf("ExtractTree (err %v) wrote %d bytes out of a stream of %d", err, written, len(data))
		}
		if err != nil {
			return
		}
		// Success: every regular file under the root is there, as it was.
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("ExtractTree succeeded on a stream that does not read: %v", err)
			}
			if hdr.Typeflag != tar.TypeReg {
				continue
			}
			rel, err := relativeEntry(hdr.Name, "gpustack")
			if err != nil {
				t.Fatalf("ExtractTree succeeded with entry %q: %v", hdr.Name, err)
			}
			want, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dst, rel))
			if err != nil {
				t.Fatalf("entry %q: %v", hdr.Name, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("entry %q holds %q, the archive %q", hdr.Name, got, want)
			}
		}
	})
}

// announced is the largest size any entry of the stream announces (as far
// as it reads), holes of sparse files included.
func announced(data []byte) int64 {
	var max int64
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return max
		}
		if hdr.Size > max {
			max = hdr.Size
		}
	}
}

func tarBytes(f *testing.F, entries []ent) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.data))}
		if err := tw.WriteHeader(hdr); err != nil {
			f.Fatalf("write %s: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			f.Fatalf("write %s: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}
