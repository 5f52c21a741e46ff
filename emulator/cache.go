package emulator

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// cacheStats counts the regular files under dir and their bytes.
func cacheStats(dir string) (files int, bytes int64, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += info.Size()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("scan cache dir %s: %w", dir, err)
	}
	return files, bytes, nil
}

// migrateCache emulates the filesystem side effects of c45e397531d1 on the
// model cache: Hugging Face hub layout → huggingface/<org>/<name>, and stale
// ModelScope/Ollama lock files removed. Like the real script it logs and
// carries on when a single entry fails.
func migrateCache(cacheDir string, lg *logger) error {
	if err := moveHFCache(filepath.Join(cacheDir, "huggingface"), lg); err != nil {
		return err
	}
	for _, sub := range []string{"model_scope", "ollama"} {
		if err := removeLocks(filepath.Join(cacheDir, sub), lg); err != nil {
			return err
		}
	}
	return nil
}

func moveHFCache(base string, lg *logger) error {
	dirs, err := filepath.Glob(filepath.Join(base, "models--*--*"))
	if err != nil {
		return fmt.Errorf("migrate hf cache: %w", err)
	}
	for _, dir := range dirs {
		parts := strings.SplitN(strings.TrimPrefix(filepath.Base(dir), "models--"), "--", 2)
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			continue
		}
		snapshots, err := os.ReadDir(filepath.Join(dir, "snapshots"))
		if err != nil || len(snapshots) == 0 {
			continue
		}
		names := make([]string, len(snapshots))
		for i, s := range snapshots {
			names[i] = s.Name()
		}
		sort.Strings(names)
		first := filepath.Join(dir, "snapshots", names[0])
		target := filepath.Join(base, parts[0], parts[1])
		if _, err := os.Lstat(target); err == nil {
			lg.log(logEmulator, levelInfo, "Target path already exists, skipping: %s", target)
			continue
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("migrate hf cache: %w", err)
		}
		entries, err := os.ReadDir(first)
		if err != nil {
			return fmt.Errorf("migrate hf cache: %w", err)
		}
		for _, e := range entries {
			src := filepath.Join(first, e.Name())
			if err := moveEntry(src, filepath.Join(target, e.Name())); err != nil {
				lg.log(logEmulator, levelWarning, "Failed to move %s: %v", src, err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			lg.log(logEmulator, levelWarning, "Failed to remove %s: %v", dir, err)
		}
		lg.log(logEmulator, levelInfo, "Migrated %s to %s", first, target)
	}
	return nil
}

// moveEntry moves src to dst; a symlink (the hub's snapshots point into
// blobs/) is replaced by the file it points to.
func moveEntry(src, dst string) error {
	info, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if info.Mode()&os.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(src)
		if err != nil {
			return err
		}
		src = real
	}
	return os.Rename(src, dst)
}

func removeLocks(dir string, lg *logger) error {
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".lock") {
			if err := os.Remove(path); err != nil {
				lg.log(logEmulator, levelWarning, "Failed to delete lock file %s: %v", path, err)
				return nil
			}
			lg.log(logEmulator, levelInfo, "Deleted lock file: %s", path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove cache locks in %s: %w", dir, err)
	}
	return nil
}
