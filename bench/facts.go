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
}

func gatherFacts(ctx context.Context, cli *client.Client, root string) facts {
	f := facts{cpus: runtime.NumCPU(), cpuModel: "unknown", memory: "unknown", kernel: "unknown", docker: "unknown", goVersion: runtime.Version(), commit: "unknown"}
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
	if v, err := cli.ServerVersion(ctx); err == nil {
		f.docker = v.Version + " (API " + v.APIVersion + ")"
		if info, err := cli.Info(ctx); err == nil {
			f.docker += ", storage driver " + info.Driver
		}
	}
	if out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output(); err == nil {
		f.goVersion = strings.TrimSpace(string(out))
	}
	git := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty", "--abbrev=12")
	git.Dir = root
	if out, err := git.Output(); err == nil {
		f.commit = strings.TrimSpace(string(out))
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
