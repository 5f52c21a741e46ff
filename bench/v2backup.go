package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/gpustack-deploy/gpustack-deploy/emulator/image"
)

// The v2 backup section: `gpustack-deploy backup` and `restore` of a v2
// database grown to -v2-mib, file level (pg-files: PGDATA as a tar, GPUStack
// stopped) against logical (pg-dump from the running server, pg_restore in
// a one-off container), medians of -v2-runs runs each, alternating.

const (
	v2Tag      = "v2.2.3"
	v2Section  = "v2backup"
	v2PGFiles  = "pg-files"
	v2PGDump   = "pg-dump"
	v2RowBytes = 512 // hex characters of payload per row
)

var v2Methods = []string{v2PGFiles, v2PGDump}

// v2Results are the section's figures.
type v2Results struct {
	skipped  string
	dbBytes  int64            // pg_database_size after growing
	rows     int64            // rows of bench_payload
	size     map[string]int64 // backup size per method (last run)
	backup   map[string][]time.Duration
	restore  map[string][]time.Duration
	downtime map[string][]time.Duration // backup: GPUStack not answering (pg-files stops it)
}

// v2HCL is a v2 deployment: no variant, the model cache in the data volume.
const v2HCL = `gpustack %[2]q {
  version        = %[5]q
  container_name = %[2]q
  port           = %[3]d
  listen_address = "127.0.0.1"
  args           = []
  labels         = { %[4]q = %[1]q }
  volume "data" { name = "%[2]s-data" }
  backup {
    dir            = "./backups"
    before_upgrade = false
  }
  health { timeout = "5m" }
}
`

func (b *bench) v2backupSection(ctx context.Context) (*v2Results, error) {
	res := &v2Results{size: map[string]int64{}, backup: map[string][]time.Duration{}, restore: map[string][]time.Duration{}, downtime: map[string][]time.Duration{}}
	if _, err := b.cli.ImageInspect(ctx, image.PostgresBaseRef()); err != nil && !image.PostgresBaseAvailable() {
		res.skipped = "the v2 emulator image needs debootstrap and root to build its PostgreSQL base"
		stage("v2 backup: SKIPPED: %s", res.skipped)
		return res, nil
	}
	spec, err := image.SpecFor(imageRepo, v2Tag)
	if err != nil {
		return nil, err
	}
	stage("v2 backup: building %s:%s (cached)", imageRepo, v2Tag)
	if err := image.Build(ctx, b.cli, b.root, spec); err != nil {
		return nil, err
	}
	port, err := b.freePort()
	if err != nil {
		return nil, err
	}
	d := &deployment{name: b.name("v2bk"), port: port}
	d.dir = filepath.Join(b.tmp, d.name)
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.file(), []byte(fmt.Sprintf(v2HCL, b.runID, d.name, d.port, labelRun, v2Tag)), 0o644); err != nil {
		return nil, err
	}
	defer func() { _ = b.teardown(context.WithoutCancel(ctx), d) }()
	if err := b.setup(ctx, d); err != nil {
		return nil, err
	}
	rows := int64(b.o.v2MiB) << 20 / (v2RowBytes + 60)
	stage("v2 backup: growing the database to about %d MiB (%d rows of %d hex characters)", b.o.v2MiB, rows, v2RowBytes)
	grow := fmt.Sprintf(`CREATE TABLE bench_payload AS SELECT g AS id, (SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, %d) i) AS payload FROM generate_series(1, %d) g`, v2RowBytes/32, rows)
	if _, err := b.v2exec(ctx, d.name, "gpustack", "emulator", "sql", grow); err != nil {
		return nil, fmt.Errorf("grow the database: %w", err)
	}
	out, err := b.v2exec(ctx, d.name, "gpustack", "emulator", "sql", "SELECT pg_database_size('gpustack') AS n")
	if err != nil {
		return nil, err
	}
	if res.dbBytes, err = firstNumber(out); err != nil {
		return nil, fmt.Errorf("database size %q: %w", out, err)
	}
	res.rows = rows
	stage("v2 backup: database is %.0f MiB; %d rounds of backup + restore by %s, alternating", float64(res.dbBytes)/(1<<20), b.o.v2Runs, strings.Join(v2Methods, " and "))
	for i := range b.o.v2Runs {
		for k := range v2Methods {
			method := v2Methods[(i+k)%len(v2Methods)]
			if err := b.v2round(ctx, d, method, res); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// v2round takes one backup by method, restores it, and removes both the
// backup and the restore's safety copy (disk space; the bench owns them).
func (b *bench) v2round(ctx context.Context, d *deployment, method string, res *v2Results) error {
	poll := startPoller(healthURL(d), downtimePoll)
	opStart := time.Now()
	s, err := b.tool(ctx, d, nil, "backup", "--method", method)
	if err == nil {
		// pg-files starts GPUStack again on its way out; the outage ends
		// at its first 200.
		err = waitHealthy(ctx, healthURL(d), 5*time.Minute)
	}
	var down time.Duration
	if o, ok := outageOf(poll.stop(), opStart); ok {
		down = o.down
	}
	if err != nil {
		return err
	}
	if s.exit != 0 {
		return fmt.Errorf("backup --method %s exited %d\n%s", method, s.exit, s.output())
	}
	id, size, err := newestBackup(filepath.Join(d.dir, "backups", d.name), method)
	if err != nil {
		return err
	}
	r, err := b.tool(ctx, d, nil, "restore", id, "--auto-approve")
	if err != nil {
		return err
	}
	if r.exit != 0 {
		return fmt.Errorf("restore %s exited %d\n%s", id, r.exit, r.output())
	}
	res.backup[method] = append(res.backup[method], s.wall)
	res.restore[method] = append(res.restore[method], r.wall)
	res.downtime[method] = append(res.downtime[method], down)
	res.size[method] = size
	stage("  %-8s backup %s (down %s), restore %s, %.0f MiB", method, sec(s.wall), sec(down), sec(r.wall), float64(size)/(1<<20))
	return os.RemoveAll(filepath.Join(d.dir, "backups"))
}

// newestBackup returns the id and size of the newest backup by method.
func newestBackup(dir, method string) (string, int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", 0, err
	}
	var id string
	var size int64
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "manifest.json"))
		if err != nil {
			continue
		}
		var m struct {
			ID     string `json:"id"`
			Method string `json:"method"`
			Files  []struct {
				Size int64 `json:"size"`
			} `json:"files"`
		}
		if json.Unmarshal(b, &m) != nil || m.Method != method || m.ID < id {
			continue
		}
		id, size = m.ID, 0
		for _, f := range m.Files {
			size += f.Size
		}
	}
	if id == "" {
		return "", 0, fmt.Errorf("no %s backup in %s", method, dir)
	}
	return id, size, nil
}

// v2exec runs a command in a running container and returns its stdout.
func (b *bench) v2exec(ctx context.Context, name string, cmd ...string) (string, error) {
	created, err := b.cli.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", err
	}
	att, err := b.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", err
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		return "", err
	}
	insp, err := b.cli.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return "", err
	}
	if insp.ExitCode != 0 {
		return "", fmt.Errorf("%v exited %d: %s", cmd, insp.ExitCode, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// firstNumber finds the first integer in s (the emulator prints JSON).
func firstNumber(s string) (int64, error) {
	start := strings.IndexAny(s, "0123456789")
	if start < 0 {
		return 0, fmt.Errorf("no number")
	}
	end := start
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	return strconv.ParseInt(s[start:end], 10, 64)
}

// v2Table is the section's results table ("" when it did not run).
func v2Table(r *v2Results) string {
	if r == nil {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	if r.skipped != "" {
		p("### v2 database backup and restore: skipped")
		p("")
		p("%s.", r.skipped)
		p("")
		return w.String()
	}
	n := len(r.backup[v2PGFiles])
	p("### v2 database backup and restore: file level (pg-files) against logical (pg-dump)")
	p("")
	p("A %s database of %.0f MiB (`pg_database_size`; %d rows of %d random hex characters in one table plus GPUStack's own), medians of %d runs each, alternating:", v2Tag, float64(r.dbBytes)/(1<<20), r.rows, v2RowBytes, n)
	p("")
	p("| Method | `backup` wall | /healthz down during backup | backup size | `restore` wall (safety copy, restore, start, verify) |")
	p("|---|---|---|---|---|")
	for _, m := range v2Methods {
		p("| %s | %s | %s | %.0f MiB | %s |", m, sec(medianDur(r.backup[m])), sec(medianDur(r.downtime[m])), float64(r.size[m])/(1<<20), sec(medianDur(r.restore[m])))
	}
	p("")
	if f, d := medianDur(r.backup[v2PGFiles]), medianDur(r.backup[v2PGDump]); f > 0 && d > 0 {
		p("pg-dump takes %.2f× the time of pg-files to back up and %.2f× to restore; pg-files stops GPUStack for its copy, pg-dump does not, and its compressed dump is %.0f%% of the tar's size.",
			float64(d)/float64(f), float64(medianDur(r.restore[v2PGDump]))/float64(medianDur(r.restore[v2PGFiles])), 100*float64(r.size[v2PGDump])/float64(max(r.size[v2PGFiles], 1)))
		p("")
	}
	return w.String()
}

// v2MethodText is the section's bullet under ## Method.
func v2MethodText(b *bench) string {
	if !b.o.has(v2Section) {
		return ""
	}
	return fmt.Sprintf("- **v2 backup and restore** (`-only %s`): one %s deployment (emulator image on Debian's PostgreSQL 15) whose database is grown with a table of random hex text to about %d MiB; then, %d times per method and alternating, `gpustack-deploy backup --method pg-files|pg-dump` and `gpustack-deploy restore <id> --auto-approve` (which keeps a pg-files safety copy first, writes the backup back, starts the container and verifies revision, probe and rows) are timed as whole processes, and /healthz is polled every 10 ms during the backup for the time GPUStack does not answer.\n", v2Section, v2Tag, b.o.v2MiB, b.o.v2Runs)
}

const v2Reproduce = "go run ./bench -only v2backup -update        # v2 PostgreSQL backup/restore: pg-files against pg-dump"
