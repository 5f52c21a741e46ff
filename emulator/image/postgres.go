package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/gpustack-deploy/gpustack-deploy/emulator"
)

// The database base image of the v2-era emulator images: a Debian
// bookworm minbase root file system with postgresql-15 and MariaDB 10.11
// (mariadb-server, mariadb-client: mariadbd, mariadb-install-db, mysql,
// mysqldump, mysqladmin), made by one debootstrap and imported through the
// Engine API (nothing is pulled). GPUStack's own v2 image bundles
// PostgreSQL 17 on Ubuntu; bookworm's 15 is the nearest PostgreSQL a Debian
// mirror offers without extra repositories. MariaDB stands in for the
// external MySQL (8.0.36+) GPUStack v2 supports: it serves the external
// database containers of the tests and gives the tool's backups mysqldump.
// The names keep "Postgres" for the callers that predate MariaDB.
const (
	PostgresBaseRepo = "gpustack-deploy/postgres-base"
	// LabelPostgresBase carries the recipe hash on the base image.
	LabelPostgresBase = "io.gpustack-deploy.postgres-base"
	// PostgresUID is the uid and gid PostgreSQL runs as in GPUStack's v2
	// image (facts §7); the base image has a user and group gpustack with it.
	PostgresUID = emulator.PostgresUID
	// EnvDebianMirror overrides the mirror debootstrap fetches from.
	EnvDebianMirror = "GPUSTACK_DEPLOY_DEBIAN_MIRROR"
	// DefaultDebianMirror is used without EnvDebianMirror.
	DefaultDebianMirror = "http://deb.debian.org/debian"
)

// postgresRecipe is everything that shapes the base image; its hash names
// the tag, so a changed recipe builds a new image next to the old one.
var postgresRecipe = struct {
	suite, variant string
	include        []string
	strip          []string
	pgMajor        string
}{
	suite:   "bookworm",
	variant: "minbase",
	include: []string{"postgresql-15", "mariadb-server", "mariadb-client"},
	// Apt's caches, documentation, translations, the cluster Debian's
	// post-install creates, and LLVM (only PostgreSQL's optional JIT uses
	// it; jit stays off).
	strip: []string{
		"var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale",
		"usr/share/info", "var/lib/postgresql/15", "etc/postgresql/15", "var/log/postgresql",
		"usr/lib/postgresql/15/lib/bitcode", "usr/lib/postgresql/15/lib/llvmjit.so",
		"usr/lib/postgresql/15/lib/llvmjit_types.bc", "usr/lib/x86_64-linux-gnu/libLLVM-14.so.1",
		"usr/lib/x86_64-linux-gnu/libLLVM-14.so", "usr/lib/x86_64-linux-gnu/libz3.so.4",
		"usr/lib/aarch64-linux-gnu/libLLVM-14.so.1", "usr/lib/aarch64-linux-gnu/libLLVM-14.so",
		"usr/lib/aarch64-linux-gnu/libz3.so.4",
		// MariaDB: the data dir Debian's post-install creates (database
		// containers make their own), Galera (no clustering here) and the
		// test suite's data.
		"var/lib/mysql", "var/log/mysql", "usr/lib/galera", "usr/share/galera", "usr/share/mysql/mysql-test",
		// MariaDB's maintenance tools (about 5 MB each, statically linked)
		// beyond the server, mariadb-install-db, mysql, mysqldump and
		// mysqladmin, with their mysql* aliases; Perl's non-base modules
		// (only MariaDB's Perl scripts, unused here, need them).
		"usr/bin/aria_chk", "usr/bin/aria_dump_log", "usr/bin/aria_ftdump", "usr/bin/aria_pack", "usr/bin/aria_read_log",
		"usr/bin/mariadb-binlog", "usr/bin/mysqlbinlog", "usr/bin/mariadb-slap", "usr/bin/mysqlslap",
		"usr/bin/mariadb-check", "usr/bin/mysqlcheck", "usr/bin/mysqlanalyze", "usr/bin/mysqloptimize", "usr/bin/mysqlrepair",
		"usr/bin/mariadb-analyze", "usr/bin/mariadb-optimize", "usr/bin/mariadb-repair",
		"usr/bin/mariadb-show", "usr/bin/mysqlshow", "usr/bin/mariadb-import", "usr/bin/mysqlimport",
		"usr/bin/mariadb-plugin", "usr/bin/mysql_plugin", "usr/bin/mariadb-conv", "usr/bin/mariadb-upgrade", "usr/bin/mysql_upgrade",
		"usr/bin/mariadb-waitpid", "usr/bin/mysql_waitpid", "usr/bin/mariadb-tzinfo-to-sql", "usr/bin/mysql_tzinfo_to_sql",
		"usr/bin/mariadbd-safe-helper", "usr/bin/mysqld_safe_helper",
		"usr/bin/myisamlog", "usr/bin/myisam_ftdump", "usr/bin/myisampack", "usr/bin/myisamchk", "usr/bin/innochecksum",
		"usr/bin/replace", "usr/bin/resolve_stack_dump", "usr/bin/perror",
		"usr/share/perl", "usr/lib/x86_64-linux-gnu/perl", "usr/lib/aarch64-linux-gnu/perl",
	},
	pgMajor: "15",
}

// PostgresBinDir is where the base image has PostgreSQL's programs; the
// image puts it first on PATH.
const PostgresBinDir = "/usr/lib/postgresql/15/bin"

// postgresBasePath is the PATH of the base image and the v2 images.
const postgresBasePath = PostgresBinDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// recipeVersion is bumped when the build steps below change in a way the
// recipe fields do not show.
const recipeVersion = "3"

func postgresRecipeHash() string {
	r := postgresRecipe
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%d\x00%s\x00",
		recipeVersion, r.suite, r.variant, strings.Join(r.include, ","), strings.Join(r.strip, ","), PostgresUID, postgresBasePath)
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// PostgresBaseRef is the tag BuildPostgresBase produces.
func PostgresBaseRef() string {
	return PostgresBaseRepo + ":" + postgresRecipe.suite + "-" + postgresRecipeHash()
}

// PostgresBaseAvailable reports whether BuildPostgresBase can build here:
// debootstrap on PATH and running as root. Tests that need the image skip
// without it, or fail with CI=true (.ci/run installs debootstrap).
func PostgresBaseAvailable() bool {
	_, err := exec.LookPath("debootstrap")
	return err == nil && os.Geteuid() == 0
}

// BuildPostgresBase returns the reference of the PostgreSQL base image,
// building it when that tag does not exist yet (once per machine and
// recipe). Concurrent callers, in this or other processes, wait for one
// build through a lock file in the user cache dir.
func BuildPostgresBase(ctx context.Context, cli client.APIClient) (ref string, err error) {
	ref = PostgresBaseRef()
	if id, _, err := inspect(ctx, cli, ref); err != nil || id != "" {
		return ref, err
	}
	unlock, err := lockFile(ctx, "postgres-base.lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if id, _, err := inspect(ctx, cli, ref); err != nil || id != "" {
		return ref, err
	}
	if !PostgresBaseAvailable() {
		return "", fmt.Errorf("build %s: needs debootstrap on PATH and root (apt-get install debootstrap)", ref)
	}
	tmp, err := os.MkdirTemp("", "gpustack-postgres-base-")
	if err != nil {
		return "", fmt.Errorf("build %s: %w", ref, err)
	}
	defer os.RemoveAll(tmp)
	rootfs := filepath.Join(tmp, "rootfs")
	if err := debootstrap(ctx, rootfs); err != nil {
		return "", fmt.Errorf("build %s: %w", ref, err)
	}
	if err := prepareRootfs(rootfs); err != nil {
		return "", fmt.Errorf("build %s: %w", ref, err)
	}
	if err := importRootfs(ctx, cli, rootfs, ref); err != nil {
		return "", fmt.Errorf("build %s: %w", ref, err)
	}
	return ref, nil
}

// lockFile takes an exclusive flock on name in the emulator cache dir,
// giving up when ctx ends.
func lockFile(ctx context.Context, name string) (unlock func(), err error) {
	dir, err := cacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func debootstrap(ctx context.Context, rootfs string) error {
	mirror := os.Getenv(EnvDebianMirror)
	if mirror == "" {
		mirror = DefaultDebianMirror
	}
	r := postgresRecipe
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant="+r.variant, "--include="+strings.Join(r.include, ","),
		r.suite, rootfs, mirror)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("debootstrap %s from %s: %w\n%s", r.suite, mirror, err, tail(string(out), 3000))
	}
	return nil
}

// prepareRootfs strips what the image does not need and adds the gpustack
// user, group and socket directory.
func prepareRootfs(rootfs string) error {
	for _, p := range postgresRecipe.strip {
		if err := os.RemoveAll(filepath.Join(rootfs, p)); err != nil {
			return fmt.Errorf("strip %s: %w", p, err)
		}
	}
	// Mount points the engine fills; their debootstrap contents (device
	// nodes) are not wanted in an image.
	for _, d := range []string{"dev", "proc", "sys"} {
		if err := emptyDir(filepath.Join(rootfs, d)); err != nil {
			return err
		}
	}
	entries := []struct{ file, line string }{
		{"etc/passwd", fmt.Sprintf("gpustack:x:%d:%d:GPUStack PostgreSQL:/var/lib/gpustack:/usr/sbin/nologin", PostgresUID, PostgresUID)},
		{"etc/group", fmt.Sprintf("gpustack:x:%d:", PostgresUID)},
		{"etc/shadow", "gpustack:!:20000::::::"},
		{"etc/gshadow", "gpustack:!::"},
	}
	for _, e := range entries {
		if err := appendLine(filepath.Join(rootfs, e.file), e.line); err != nil {
			return err
		}
	}
	// libpq's default socket directory on Debian; the emulated PostgreSQL
	// puts its socket there, running as gpustack.
	sock := filepath.Join(rootfs, "run", "postgresql")
	if err := os.MkdirAll(sock, 0o775); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	if err := os.Chown(sock, PostgresUID, PostgresUID); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	if err := os.Chmod(sock, 0o775|os.ModeSetgid); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, strings.TrimPrefix(PostgresBinDir, "/"), "postgres")); err != nil {
		return fmt.Errorf("PostgreSQL %s not installed: %w", postgresRecipe.pgMajor, err)
	}
	for _, p := range []string{"usr/sbin/mariadbd", "usr/bin/mariadb-install-db", "usr/bin/mysqldump", "usr/bin/mysql", "usr/bin/mysqladmin"} {
		if _, err := os.Stat(filepath.Join(rootfs, p)); err != nil {
			return fmt.Errorf("MariaDB not installed: %w", err)
		}
	}
	return nil
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return os.Mkdir(dir, 0o755)
	}
	if err != nil {
		return fmt.Errorf("empty %s: %w", dir, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("empty %s: %w", dir, err)
		}
	}
	return nil
}

func appendLine(path, line string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("add gpustack user: %w", err)
	}
	name, _, _ := strings.Cut(line, ":")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+":") {
			return fmt.Errorf("add gpustack user: %s already has %q", path, l)
		}
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		line = "\n" + line
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("add gpustack user: %w", err)
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("add gpustack user: %w", err)
	}
	return f.Close()
}

// importRootfs streams a tar of rootfs (numeric owners, modes and hard
// links kept) into ImageImport, tagged ref.
func importRootfs(ctx context.Context, cli client.APIClient, rootfs, ref string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, rootfs)) }()
	defer pr.Close()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, ref, image.ImportOptions{
		Changes: []string{
			"ENV PATH=" + postgresBasePath,
			"ENV LANG=C.UTF-8",
			fmt.Sprintf("LABEL %s=%s", LabelPostgresBase, postgresRecipeHash()),
		},
	})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	id, _, err := inspect(ctx, cli, ref)
	if err != nil {
		return err
	}
	if id == "" {
		return errors.New("import finished but the image is not there")
	}
	return nil
}

func writeTar(w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	var paths []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != root {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tar rootfs: %w", err)
	}
	sort.Strings(paths)
	for _, path := range paths {
		fi, err := os.Lstat(path)
		if err != nil {
			return fmt.Errorf("tar rootfs: %w", err)
		}
		target := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(path); err != nil {
				return fmt.Errorf("tar rootfs: %w", err)
			}
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("tar rootfs %s: %w", path, err)
		}
		rel, _ := filepath.Rel(root, path)
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = hdr.Name
				}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar rootfs %s: %w", path, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("tar rootfs: %w", err)
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("tar rootfs %s: %w", path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar rootfs: %w", err)
	}
	return nil
}
