package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/container"
)

// Stat reports whether path exists inside the container (running or not)
// and its size. A missing path is (false, 0, nil).
func (c *Client) Stat(ctx context.Context, id, p string) (bool, int64, error) {
	st, err := c.api.ContainerStatPath(ctx, id, p)
	if IsNotFound(err) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("stat %s in %s: %w", p, short(id), err)
	}
	return true, st.Size, nil
}

// CopyFile copies the regular file at src inside the container (running or
// not, through its mounts) to the local file dst, which is created with mode
// 0600. It returns the number of bytes written. A missing src is reported
// with an error for which IsNotFound is true.
func (c *Client) CopyFile(ctx context.Context, id, src, dst string) (int64, error) {
	rc, _, err := c.api.CopyFromContainer(ctx, id, src)
	if err != nil {
		return 0, fmt.Errorf("copy %s out of %s: %w", src, short(id), err)
	}
	defer rc.Close()
	n, err := extractSingleFile(tar.NewReader(rc), path.Base(src), dst)
	if err != nil {
		return 0, fmt.Errorf("copy %s out of %s: %w", src, short(id), err)
	}
	return n, nil
}

// extractSingleFile writes the one regular file named name from a tar
// stream to dst. Anything else in the stream (links, devices, other names)
// is refused: the engine's stream is not trusted to stay inside dst.
func extractSingleFile(tr *tar.Reader, name, dst string) (int64, error) {
	hdr, err := tr.Next()
	if err != nil {
		return 0, fmt.Errorf("read archive: %w", err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return 0, fmt.Errorf("%s is not a regular file (tar type %q)", hdr.Name, hdr.Typeflag)
	}
	if hdr.Name != name {
		return 0, fmt.Errorf("archive holds %q, want %q", hdr.Name, name)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", dst, err)
	}
	n, err := io.Copy(f, tr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("write %s: %w", dst, err)
	}
	if n != hdr.Size {
		return n, fmt.Errorf("short copy of %s: %d of %d bytes", name, n, hdr.Size)
	}
	return n, nil
}

// CopyTree copies the directory src inside the container to the local
// directory dst, which must not exist. Only directories and regular files
// are written; symlinks and hard links are skipped unless they stay inside
// dst, and no entry may escape dst.
func (c *Client) CopyTree(ctx context.Context, id, src, dst string) error {
	rc, _, err := c.api.CopyFromContainer(ctx, id, src)
	if err != nil {
		return fmt.Errorf("copy %s out of %s: %w", src, short(id), err)
	}
	defer rc.Close()
	if err := ExtractTree(tar.NewReader(rc), path.Base(src), dst); err != nil {
		return fmt.Errorf("copy %s out of %s: %w", src, short(id), err)
	}
	return nil
}

// ExtractTree unpacks a tar stream whose entries live under root/ into dst.
// Entries outside root, absolute names, ".." components and links whose
// target leaves dst are refused with an error.
func ExtractTree(tr *tar.Reader, root, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		rel, err := relativeEntry(hdr.Name, root)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return fmt.Errorf("create %s: %w", target, err)
			}
		case tar.TypeReg:
			if sparse(hdr) {
				// Its holes read back as zeros: a few bytes of stream can
				// announce a file of any size. Docker never writes them.
				return fmt.Errorf("archive entry %q is a sparse file; a data directory copy holds none", hdr.Name)
			}
			if err := writeEntry(tr, target, hdr); err != nil {
				return err
			}
		case tar.TypeSymlink, tar.TypeLink:
			if !linksInside(hdr, root, dst, target) {
				return fmt.Errorf("archive entry %q links outside the target (%q)", hdr.Name, hdr.Linkname)
			}
			// Links are not needed to read a database; they are refused
			// when they escape and otherwise left out.
		default:
			// Devices, fifos and the like have no place in a data volume copy.
		}
	}
}

// sparse reports whether a regular entry is a PAX sparse file (GNU's
// formats 0.0, 0.1 and 1.0 all mark it with GNU.sparse.* records).
func sparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func relativeEntry(name, root string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	if path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("archive entry %q escapes the target", name)
	}
	if clean == root {
		return ".", nil
	}
	if !strings.HasPrefix(clean, root+"/") {
		return "", fmt.Errorf("archive entry %q is outside %q", name, root)
	}
	return filepath.FromSlash(strings.TrimPrefix(clean, root+"/")), nil
}

// linksInside reports whether a link entry, to be written at target,
// points inside dst. A symlink's target is relative to the link's directory
// (or absolute); a hard link's names another entry of the archive, so it
// must be under root like any entry name.
func linksInside(hdr *tar.Header, root, dst, target string) bool {
	if hdr.Typeflag == tar.TypeLink {
		_, err := relativeEntry(hdr.Linkname, root)
		return err == nil
	}
	linkTarget := hdr.Linkname
	if !filepath.IsAbs(linkTarget) {
		linkTarget = filepath.Join(filepath.Dir(target), linkTarget)
	}
	return within(dst, linkTarget)
}

func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func writeEntry(r io.Reader, target string, hdr *tar.Header) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(target), err)
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", target, err)
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("short copy of %s: %d of %d bytes", hdr.Name, n, hdr.Size)
	}
	return nil
}

// CopyIn writes the tar stream r into dir inside the container (running or
// not, through its mounts).
func (c *Client) CopyIn(ctx context.Context, id, dir string, r io.Reader) error {
	if err := c.api.CopyToContainer(ctx, id, dir, r, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("copy into %s:%s: %w", short(id), dir, err)
	}
	return nil
}

// ReadSmallFile returns the content of the regular file at p inside the
// container (running or not, through its mounts), refusing one larger
// than limit bytes. A missing file is an error for which IsNotFound is true.
func (c *Client) ReadSmallFile(ctx context.Context, id, p string, limit int64) ([]byte, error) {
	rc, _, err := c.api.CopyFromContainer(ctx, id, p)
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", p, short(id), err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", p, short(id), err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("read %s in %s: not a regular file", p, short(id))
	}
	if hdr.Size > limit {
		return nil, fmt.Errorf("read %s in %s: %d bytes, more than the %d expected", p, short(id), hdr.Size, limit)
	}
	b, err := io.ReadAll(io.LimitReader(tr, limit))
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", p, short(id), err)
	}
	return b, nil
}
