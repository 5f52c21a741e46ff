package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// Static cgo build: FROM scratch has no libc, no /etc/passwd, no resolver.
const (
	buildTags    = "netgo osusergo sqlite_omit_load_extension"
	buildLDFlags = "-s -w -linkmode external -extldflags -static"
	mainPackage  = "./cmd/gpustack-emulator"
)

// emulatorModules are the modules the emulator binary links besides this
// one; TestEmulatorModules keeps the list honest. Only their lines of
// go.mod and go.sum enter the hash, so unrelated dependency changes by
// other packages do not rebuild the images.
var emulatorModules = []string{"github.com/mattn/go-sqlite3", "github.com/lib/pq", "github.com/go-sql-driver/mysql", "filippo.io/edwards25519"}

// SourceHash hashes what the emulator binary is built from: the emulator
// package (tests and this image package excluded), its main package, the
// go.mod/go.sum lines of its dependencies, the toolchain and build flags.
func SourceHash(moduleRoot string) (string, error) {
	var files []string
	for _, dir := range []string{"emulator", "cmd/gpustack-emulator"} {
		root := filepath.Join(moduleRoot, dir)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path == filepath.Join(moduleRoot, "emulator", "image") {
				return filepath.SkipDir
			}
			if !d.IsDir() && !strings.HasSuffix(path, "_test.go") && !strings.Contains(path, string(filepath.Separator)+"testdata"+string(filepath.Separator)) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("hash emulator sources: %w", err)
		}
	}
	sort.Strings(files)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s/%s\x00", runtime.Version(), buildTags, buildLDFlags, runtime.GOOS, runtime.GOARCH)
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(moduleRoot, name))
		if err != nil {
			return "", fmt.Errorf("hash emulator sources: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "go ") || mentionsModule(line) {
				fmt.Fprintf(h, "%s\x00", strings.TrimSpace(line))
			}
		}
	}
	for _, f := range files {
		rel, _ := filepath.Rel(moduleRoot, f)
		fmt.Fprintf(h, "%s\x00", filepath.ToSlash(rel))
		in, err := os.Open(f)
		if err != nil {
			return "", fmt.Errorf("hash emulator sources: %w", err)
		}
		_, err = io.Copy(h, in)
		in.Close()
		if err != nil {
			return "", fmt.Errorf("hash emulator sources: %w", err)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

func mentionsModule(line string) bool {
	for _, f := range strings.Fields(line) {
		for _, m := range emulatorModules {
			if f == m {
				return true
			}
		}
	}
	return false
}

// cacheDir is where compiled binaries live, one directory per source hash.
func cacheDir() (string, error) {
	if d := os.Getenv("GPUSTACK_EMULATOR_CACHE_DIR"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("emulator cache dir: %w", err)
	}
	return filepath.Join(base, "gpustack-deploy", "emulator"), nil
}

// compile returns the static emulator binary for srcHash, building it on a
// cache miss. Concurrent builders race harmlessly: each writes a private
// temporary file and renames it into place.
func compile(ctx context.Context, moduleRoot, srcHash string) ([]byte, error) {
	dir, err := cacheDir()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, srcHash, "gpustack")
	if b, err := os.ReadFile(out); err == nil {
		return b, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, fmt.Errorf("compile emulator: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "gpustack-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("compile emulator: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("compile emulator: the go toolchain is needed on PATH: %w", err)
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-buildvcs=false", "-tags", buildTags,
		"-ldflags", buildLDFlags, "-o", tmp.Name(), mainPackage)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("compile emulator: %w\n%s", err, b)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, fmt.Errorf("compile emulator: %w", err)
	}
	return os.ReadFile(out)
}
