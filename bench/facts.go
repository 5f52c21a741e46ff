package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/docker/docker/client"
)

// facts describe the machine the figures come from.
type facts struct {
	cpus      int
	cpuModel  string
	memory    string
	kernel    string
	docker    string // server version, API version, storage driver
	goVersion string
	commit    string
	disk      string // file system of the temporary directory
	imageSize string // of the emulator image at the upgrade's target tag
}

func gatherFacts(ctx context.Context, cli *client.Client, root, tmp string) facts {
	f := facts{cpus: runtime.NumCPU(), cpuModel: "unknown", memory: "unknown", kernel: "unknown", docker: "unknown", goVersion: runtime.Version(), commit: "unknown", disk: diskOf(tmp)}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		f.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		f.cpuModel = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		f.memory = v
		if kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64); err == nil {
			f.memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	f.imageSize = "(size unknown)"
	if img, err := cli.ImageInspect(ctx, imageRepo+":"+toTag); err == nil {
		f.imageSize = fmt.Sprintf("%.0f MB", float64(img.Size)/1e6)
	}
	if v, err := cli.ServerVersion(ctx); err == nil {
		f.docker = v.Version + " (API " + v.APIVersion + ")"
		if info, err := cli.Info(ctx); err == nil {
			f.docker += ", storage driver " + info.Driver
		}
	}
	if out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output(); err == nil {
		f.goVersion = strings.TrimSpace(string(out))
	}
	// The commit, "-dirty" when anything but the report itself differs
	// from it (a rerun over an earlier report is still a clean build).
	git := exec.CommandContext(ctx, "git", "rev-parse", "--short=12", "HEAD")
	git.Dir = root
	if out, err := git.Output(); err == nil {
		f.commit = strings.TrimSpace(string(out))
		st := exec.CommandContext(ctx, "git", "status", "--porcelain", "--", ".", ":(exclude)docs/benchmarks.md")
		st.Dir = root
		if out, err := st.Output(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			f.commit += "-dirty"
		}
	}
	return f
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	file, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// diskOf describes the file system dir is on: mount point, type, device
// and size, from /proc/self/mounts and statfs.
func diskOf(dir string) string {
	file, err := os.Open("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	defer file.Close()
	var dev, point, typ string
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		if (dir == f[1] || strings.HasPrefix(dir, strings.TrimSuffix(f[1], "/")+"/")) && len(f[1]) >= len(point) {
			dev, point, typ = f[0], f[1], f[2]
		}
	}
	if point == "" {
		return "unknown"
	}
	out := fmt.Sprintf("%s (%s on %s)", point, typ, dev)
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) == nil {
		out += fmt.Sprintf(", %.0f GiB", float64(st.Blocks*uint64(st.Bsize))/(1<<30))
	}
	return out
}
