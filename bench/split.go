package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

// The split section: a v0.5.1 deployment made without a cache volume
// keeps its model cache in the data volume (/var/lib/gpustack/cache); the
// file then declares volume "cache" and `apply` splits it out
// (planner/cache.go, executor/volumes.go). It is set against a raw copy of
// the same tree by one one-off container.

// splitFiles is how many large files the cache tree holds; with the small
// json files it has splitFiles+len(splitJSON) files.
const splitFiles = 8

// splitJSON are the small files next to the weights.
var splitJSON = []string{"config.json", "generation_config.json", "tokenizer.json"}

// splitModelDir is where the files go, below the data volume's cache dir.
const splitModelDir = "huggingface/org/model"

// minFreeSplit is the least free space the split section wants on every
// file system it writes to; it wants four times the tree when that is more
// (the tree in the data volume, its copy, and room to spare).
const minFreeSplit = 8 << 30

// Split methods, measured alternately.
const (
	spApply = iota // gpustack-deploy apply --auto-approve, doing the split
	spRaw          // one-off container: cp -a /src/cache/. /dst/
	numSp
)

var spKinds = [numSp]string{"split", "raw copy"}

// Phases of the split, in order. They are contiguous: each runs from the
// end of the previous one, at a progress line of the tool or at an engine
// event of a one-off container the tool ran (its create or its destroy).
const (
	phBefore   = iota // process start → "stopping … to copy the model cache"
	phStop            // → create of the copy container
	phCopy            // copy container create → destroy
	phSums            // → destroy of the later of the two sha256 listings, which run at once
	phReplace         // → "? verify" line
	phVerify          // → "- remove previous container" line
	phPrevious        // → "- remove old cache copy" line
	phSizes           // → destroy of the later of the two size listings, which run at once
	phRemove          // → destroy of the rm container
	phExit            // → process exit
	numPh
)

var phaseNames = [numPh]string{
	"start-up, observe (a one-off container counts the files in `<data>/cache`), plan, create the cache volume",
	"stop GPUStack (`ContainerStop`)",
	"copy: one-off container `cp -a /src/cache/. /dst/` (create → removed)",
	"sha256 lists of the source and of the copy: two one-off containers `find … -exec sha256sum {} +`, at the same time",
	"replace the container (rename, create, start with `--cache-dir`)",
	"verify: `/healthz`, `/version`, database stamp and probe, restart policy",
	"remove the container kept for rollback",
	"size lists of both sides again: two one-off containers `find … -exec stat`",
	"remove the old copy: one-off container `rm -rf`",
	"result lines, exit (until the launcher has exited)",
}

// phaseData are the phases that read or write the whole tree: the report
// gives their rate.
var phaseData = map[int]bool{phCopy: true, phSums: true}

// splitResults are the figures of the split section.
type splitResults struct {
	skipped string   // why the section did not run ("" if it did)
	free    []string // free space where it writes, when checked
	files   int      // files in the tree
	bytes   int64    // bytes in the tree
	fill    []time.Duration
	// the split, as a process
	apply series
	// phases of each split run (numPh entries)
	phases [][numPh]time.Duration
	// the copy as the tool reports it ("copied … in X")
	reported []time.Duration
	// one-off containers the tool ran before it stopped GPUStack
	observeHelpers []int
	// what the plan said about the tree ("11 files, 2.0 GiB")
	planned string
	// downtime as a client sees it
	down, lead []time.Duration
	windows    []int
	// the raw copy: create → removed, and the container's own run
	raw, rawRun []time.Duration
}

// splitSection times, alternately on fresh set-ups, `gpustack-deploy
// apply` splitting a -split-mib MiB cache out of the data volume and a raw
// copy of the same tree.
func (b *bench) splitSection(ctx context.Context) (*splitResults, error) {
	res := &splitResults{}
	size := int64(b.o.splitMiB) << 20
	need := max(uint64(minFreeSplit), 4*uint64(size))
	free, short, err := b.freeSpace(ctx, need)
	if err != nil {
		return nil, err
	}
	res.free = free
	if short != "" {
		res.skipped = fmt.Sprintf("%s, the split section needs %.0f GiB (a %d MiB cache in the data volume and its copy)", short, float64(need)/(1<<30), b.o.splitMiB)
		stage("cache split: SKIPPED: %s", res.skipped)
		return res, nil
	}
	stage("cache split of %d MiB: %d rounds of %s and %s, alternating, each on a fresh deployment at %s (free: %s)",
		b.o.splitMiB, b.o.splitRuns, spKinds[spApply], spKinds[spRaw], toTag, strings.Join(free, ", "))
	for i := range b.o.splitRuns {
		var line []string
		for k := range numSp {
			m := (i + k) % numSp
			var took time.Duration
			switch m {
			case spApply:
				took, err = b.splitOnce(ctx, res)
			case spRaw:
				took, err = b.rawTreeCopy(ctx, res)
			}
			if err != nil {
				return nil, err
			}
			line = append(line, fmt.Sprintf("%s %v", spKinds[m], took.Round(time.Millisecond)))
		}
		stage("  round %d/%d: %s", i+1, b.o.splitRuns, strings.Join(line, ", "))
	}
	return res, nil
}

// freeSpace is the free space of every directory the bench writes to (its
// temporary directory, os.TempDir(), the engine's root); short names the
// first with less than need bytes ("" when all have enough).
func (b *bench) freeSpace(ctx context.Context, need uint64) (free []string, short string, err error) {
	dirs := []string{b.tmp, os.TempDir()}
	if info, err := b.cli.Info(ctx); err == nil && info.DockerRootDir != "" {
		if _, err := os.Stat(info.DockerRootDir); err == nil {
			dirs = append(dirs, info.DockerRootDir)
		} else {
			free = append(free, "the engine's root "+info.DockerRootDir+" is not on this machine: not checked")
		}
	}
	for _, dir := range dirs {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return nil, "", fmt.Errorf("free space of %s: %w", dir, err)
		}
		n := st.Bavail * uint64(st.Bsize)
		free = append(free, fmt.Sprintf("%s %.1f GiB free", dir, float64(n)/(1<<30)))
		if n < need && short == "" {
			short = fmt.Sprintf("%s has %.1f GiB free", dir, float64(n)/(1<<30))
		}
	}
	return free, short, nil
}

// splitHCL is a v0.5.1 CPU deployment like the others, with a data volume
// and, when cache is set, a cache volume; never pulled.
const splitHCL = `# gpustack-deploy benchmark deployment (run %[1]s); removed at the end of the run.
gpustack %[2]q {
  version        = %[3]q
  variant        = "cpu"
  container_name = %[2]q
  port           = %[4]d
  listen_address = "127.0.0.1"
  args           = ["--disable-worker"]
  labels         = { %[5]q = %[1]q }

  volume "data" { name = "%[2]s-data" }
  %[6]s

  backup { dir = "./backups" }
  policy { pull = "never" } # the emulator images are built locally
  health { timeout = "2m" }
}
`

// writeSplitHCL writes d's file with or without the cache volume.
func (b *bench) writeSplitHCL(d *deployment, cache bool) error {
	line := "# no cache volume: the model cache lives in the data volume"
	if cache {
		line = fmt.Sprintf("volume \"cache\" { name = \"%s-cache\" }", d.name)
	}
	return os.WriteFile(d.file(), []byte(fmt.Sprintf(splitHCL, b.runID, d.name, toVer, d.port, labelRun, line)), 0o644)
}

// splitSetup applies a fresh deployment without cache volume (not timed),
// fills <data>/cache with the model tree, rewrites the file with a cache
// volume and flushes the page cache's dirty pages, so that neither method
// pays for the fill's writeback.
func (b *bench) splitSetup(ctx context.Context, kind string, res *splitResults) (*deployment, error) {
	port, err := b.freePort()
	if err != nil {
		return nil, err
	}
	d := &deployment{name: b.name(kind), port: port, backup: true}
	d.dir = b.tmp + "/" + d.name
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, err
	}
	if err := b.writeSplitHCL(d, false); err != nil {
		return nil, err
	}
	if err := b.setup(ctx, d); err != nil {
		return nil, err
	}
	fileMiB := b.o.splitMiB / splitFiles
	script := `set -e
m="/d/` + observe.CacheInData + `/` + splitModelDir + `"
mkdir -p "$m"
first="$m/model-00001-of-0000` + strconv.Itoa(splitFiles) + `.safetensors"
dd if=/dev/urandom of="$first" bs=1M count="$1" 2>/dev/null
i=2
while [ "$i" -le ` + strconv.Itoa(splitFiles) + ` ]; do cp "$first" "$m/model-0000$i-of-0000` + strconv.Itoa(splitFiles) + `.safetensors"; i=$((i+1)); done
`
	for _, j := range splitJSON {
		script += `printf '{"bench": "` + b.runID + `", "file": "` + j + `"}\n' > "$m/` + j + "\"\n"
	}
	t0 := time.Now()
	if _, err := b.oneOff(ctx, script, []string{strconv.Itoa(fileMiB)}, volMount(d.name+"-data", "/d", false)); err != nil {
		return nil, fmt.Errorf("fill the model cache of %s: %w", d.name, err)
	}
	res.fill = append(res.fill, time.Since(t0))
	files, n, err := b.treeSize(ctx, d.name+"-data", observe.CacheInData)
	if err != nil {
		return nil, err
	}
	if files != splitFiles+len(splitJSON) || n < int64(splitFiles*fileMiB)<<20 {
		return nil, fmt.Errorf("%s: the model cache holds %d files, %d bytes after the fill", d.name, files, n)
	}
	if res.files != 0 && (files != res.files || n != res.bytes) {
		return nil, fmt.Errorf("%s: the model cache holds %d files, %d bytes; an earlier set-up held %d, %d", d.name, files, n, res.files, res.bytes)
	}
	res.files, res.bytes = files, n
	if err := b.writeSplitHCL(d, true); err != nil {
		return nil, err
	}
	syscall.Sync()
	return d, nil
}

func volMount(vol, target string, ro bool) mount.Mount {
	return mount.Mount{Type: mount.TypeVolume, Source: vol, Target: target, ReadOnly: ro}
}

// oneOffRun is a finished one-off container: its standard output, the
// time from create to removed, and from its start to its exit as the
// engine records them.
type oneOffRun struct {
	stdout    string
	took, ran time.Duration
}

// oneOff runs script with /bin/sh in a one-off container of the
// deployments' image (as root, no network, the given mounts), like the
// tool's helper containers (engine.RunTool), and fails on a non-zero exit.
// It is named and labelled as the run's.
func (b *bench) oneOff(ctx context.Context, script string, args []string, mounts ...mount.Mount) (oneOffRun, error) {
	var r oneOffRun
	name := b.name("oneoff")
	cfg := &container.Config{
		Image: imageRepo + ":" + toTag, Entrypoint: []string{"/bin/sh", "-c", script}, Cmd: append([]string{"sh"}, args...),
		User: "0:0", Labels: map[string]string{labelRun: b.runID},
	}
	host := &container.HostConfig{NetworkMode: "none", Mounts: mounts}
	t0 := time.Now()
	created, err := b.cli.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		return r, fmt.Errorf("create %s: %w", name, err)
	}
	removed := false
	defer func() {
		if !removed {
			_ = b.cli.ContainerRemove(context.WithoutCancel(ctx), created.ID, container.RemoveOptions{Force: true})
		}
	}()
	exited, waitErr := b.cli.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := b.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return r, fmt.Errorf("start %s: %w", name, err)
	}
	var code int64
	select {
	case w := <-exited:
		code = w.StatusCode
	case err := <-waitErr:
		return r, fmt.Errorf("wait for %s: %w", name, err)
	}
	j, err := b.cli.ContainerInspect(ctx, created.ID)
	if err != nil {
		return r, err
	}
	rc, err := b.cli.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return r, err
	}
	var stdout, stderr bytes.Buffer
	_, err = stdcopy.StdCopy(&stdout, &stderr, rc)
	rc.Close()
	if err != nil {
		return r, err
	}
	if err := b.cli.ContainerRemove(ctx, created.ID, container.RemoveOptions{}); err != nil {
		return r, err
	}
	removed = true
	r.took = time.Since(t0)
	if j.State != nil {
		started, err1 := time.Parse(time.RFC3339Nano, j.State.StartedAt)
		finished, err2 := time.Parse(time.RFC3339Nano, j.State.FinishedAt)
		if err1 == nil && err2 == nil {
			r.ran = finished.Sub(started)
		}
	}
	r.stdout = stdout.String()
	if code != 0 {
		return r, fmt.Errorf("%s exited %d: %s", name, code, strings.TrimSpace(stderr.String()))
	}
	return r, nil
}

// treeSize counts the regular files below dir (relative) of volume vol
// and their bytes, summed here: awk's printf %d does not hold 2 GiB in
// every awk.
func (b *bench) treeSize(ctx context.Context, vol, dir string) (int, int64, error) {
	r, err := b.oneOff(ctx, `cd "/v/$1" 2>/dev/null || exit 0; find . -type f -exec stat -c '%s' {} +`, []string{dir}, volMount(vol, "/v", true))
	if err != nil {
		return 0, 0, fmt.Errorf("list %s/%s: %w", vol, dir, err)
	}
	var files int
	var n int64
	for _, f := range strings.Fields(r.stdout) {
		x, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("list %s/%s: %q", vol, dir, f)
		}
		files++
		n += x
	}
	return files, n, nil
}

// engineEvents records the container events of one deployment (its own
// containers and the tool's one-off containers) while an operation runs.
type engineEvents struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	msgs   []events.Message
	err    error
}

func (b *bench) watchEvents(ctx context.Context, deployment string) *engineEvents {
	ctx, cancel := context.WithCancel(ctx)
	e := &engineEvents{cancel: cancel, done: make(chan struct{})}
	msgs, errs := b.cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("label", labelDeployment+"="+deployment),
	)})
	go func() {
		defer close(e.done)
		for {
			select {
			case m := <-msgs:
				e.mu.Lock()
				e.msgs = append(e.msgs, m)
				e.mu.Unlock()
			case err := <-errs:
				if err != nil && !errors.Is(err, context.Canceled) {
					e.mu.Lock()
					e.err = err
					e.mu.Unlock()
				}
				return
			}
		}
	}()
	return e
}

// stop waits a moment for the last events to arrive, ends the stream and
// returns what it saw.
func (e *engineEvents) stop() ([]events.Message, error) {
	time.Sleep(200 * time.Millisecond)
	e.cancel()
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.msgs), e.err
}

// helperRun is one of the tool's one-off containers, from its events.
type helperRun struct {
	id                string
	created, removed  time.Duration // since the process start
	haveC, haveRemove bool
}

// helpers returns the tool's one-off containers in the order they were
// created, with times relative to t0.
func helpers(msgs []events.Message, t0 time.Time) []helperRun {
	byID := map[string]*helperRun{}
	var order []string
	for _, m := range msgs {
		if !strings.HasPrefix(m.Actor.Attributes["name"], "gpustack-deploy-tool-") {
			continue
		}
		h, ok := byID[m.Actor.ID]
		if !ok {
			h = &helperRun{id: m.Actor.ID}
			byID[m.Actor.ID] = h
			order = append(order, m.Actor.ID)
		}
		at := time.Unix(0, m.TimeNano).Sub(t0)
		switch m.Action {
		case events.ActionCreate:
			h.created, h.haveC = at, true
		case events.ActionDestroy:
			h.removed, h.haveRemove = at, true
		}
	}
	var out []helperRun
	for _, id := range order {
		out = append(out, *byID[id])
	}
	slices.SortStableFunc(out, func(a, b helperRun) int { return int(a.created - b.created) })
	return out
}

// copiedLine matches the tool's line after the copy and its check.
var copiedLine = regexp.MustCompile(`copied (\d+) model files to \S+ in (\S+) and checked them`)

// plannedLine matches what the plan says the tree holds.
var plannedLine = regexp.MustCompile(`copy model cache from \S+ into \S+ \(([^)]*)\)`)

// splitOnce sets up a deployment with the cache in its data volume (not
// timed), then times `gpustack-deploy apply --auto-approve` splitting it
// out while a client polls /healthz and the engine's events of the
// deployment are recorded; checks the result and removes the deployment.
func (b *bench) splitOnce(ctx context.Context, res *splitResults) (time.Duration, error) {
	d, err := b.splitSetup(ctx, "spl", res)
	if err != nil {
		return 0, err
	}
	ev := b.watchEvents(ctx, d.name)
	p := startPoller(healthURL(d), downtimePoll)
	if err := p.waitOK(ctx, 3, 10*time.Second); err != nil {
		p.stop()
		ev.stop()
		return 0, fmt.Errorf("%s before the split: %w", d.name, err)
	}
	lines := &lineStamps{t0: time.Now()}
	x, err := b.toolOut(ctx, d, nil, lines, "apply", "--auto-approve")
	// On the clock of the progress lines (the launcher's wall starts a
	// little later).
	ended := time.Since(lines.t0)
	if err != nil {
		p.stop()
		ev.stop()
		return 0, err
	}
	werr := p.waitOK(ctx, stableAfter, 30*time.Second)
	polls := p.stop()
	msgs, everr := ev.stop()
	if x.exit != 0 {
		return 0, fmt.Errorf("split of %s: apply exited %d\n%s", d.name, x.exit, x.output())
	}
	if werr != nil {
		return 0, fmt.Errorf("%s after the split: %w", d.name, werr)
	}
	if everr != nil {
		return 0, fmt.Errorf("engine events of %s: %w", d.name, everr)
	}
	o, ok := outageOf(polls, lines.t0)
	if !ok {
		return 0, fmt.Errorf("%s: the client saw no outage during the split (%d polls)", d.name, len(polls))
	}
	ph, reported, nObserve, err := splitPhases(d.name, lines, helpers(msgs, lines.t0), ended)
	if err != nil {
		return 0, fmt.Errorf("split of %s: %w\n%s", d.name, err, x.output())
	}
	if m := copiedLine.FindStringSubmatch(x.output()); m == nil || m[1] != strconv.Itoa(res.files) {
		return 0, fmt.Errorf("split of %s: no line \"copied %d model files\"\n%s", d.name, res.files, x.output())
	}
	if m := plannedLine.FindStringSubmatch(x.output()); m != nil {
		res.planned = m[1]
	}
	if err := b.checkSplit(ctx, d, res); err != nil {
		return 0, err
	}
	res.apply.add(x)
	res.phases = append(res.phases, ph)
	res.reported = append(res.reported, reported)
	res.observeHelpers = append(res.observeHelpers, nObserve)
	res.down = append(res.down, o.down)
	res.lead = append(res.lead, o.lead)
	res.windows = append(res.windows, o.windows)
	stage("    split %s: copy %v, sha256 lists %v, down %v", d.name, ph[phCopy].Round(time.Millisecond),
		ph[phSums].Round(time.Millisecond), o.down.Round(time.Millisecond))
	return x.wall, b.teardown(ctx, d)
}

// splitPhases cuts the split's wall time at its progress lines and at the
// creation and removal of the tool's one-off containers: those before
// "stopping …" belong to observe; then three (copy, sha256 of each side)
// before "-/+ replace container"; then three (size of each side, rm)
// after "- remove old cache copy". It also returns the copy's duration as
// the tool reports it, and how many one-off containers observe ran.
func splitPhases(name string, lines *lineStamps, hs []helperRun, ended time.Duration) ([numPh]time.Duration, time.Duration, int, error) {
	var ph [numPh]time.Duration
	// The plan printed before the changes has the same words: progress
	// lines start with the deployment's name.
	find := func(s string) (time.Duration, error) {
		lines.mu.Lock()
		defer lines.mu.Unlock()
		for _, l := range lines.lines {
			if strings.HasPrefix(l.text, name+": ") && strings.Contains(l.text, s) {
				return l.at, nil
			}
		}
		return 0, fmt.Errorf("no progress line %q", name+": … "+s)
	}
	marks := map[string]time.Duration{}
	for _, s := range []string{"to copy the model cache", "and checked them", "-/+ replace container", "? verify", "- remove previous container", "- remove old cache copy", "removed the old copy of the model cache"} {
		at, err := find(s)
		if err != nil {
			return ph, 0, 0, err
		}
		marks[s] = at
	}
	stopping, replace, removeOld := marks["to copy the model cache"], marks["-/+ replace container"], marks["- remove old cache copy"]
	var pre, mid, post []helperRun
	for _, h := range hs {
		if !h.haveC || !h.haveRemove {
			return ph, 0, 0, fmt.Errorf("one-off container %.12s: no create or destroy event", h.id)
		}
		switch {
		case h.created < stopping:
			pre = append(pre, h)
		case h.created < replace:
			mid = append(mid, h)
		case h.created > removeOld:
			post = append(post, h)
		default:
			return ph, 0, 0, fmt.Errorf("one-off container %.12s created during the replacement", h.id)
		}
	}
	if len(mid) != 3 || len(post) != 3 {
		return ph, 0, 0, fmt.Errorf("%d one-off containers between stop and replace, %d after \"- remove old cache copy\"; want 3 and 3", len(mid), len(post))
	}
	cuts := [numPh]time.Duration{
		phBefore:   stopping,
		phStop:     mid[0].created,
		phCopy:     mid[0].removed,
		phSums:     max(mid[1].removed, mid[2].removed),
		phReplace:  marks["? verify"],
		phVerify:   marks["- remove previous container"],
		phPrevious: removeOld,
		phSizes:    max(post[0].removed, post[1].removed),
		phRemove:   post[2].removed,
		phExit:     ended,
	}
	prev := time.Duration(0)
	for i, c := range cuts {
		if c < prev {
			return ph, 0, 0, fmt.Errorf("phase %q ends at %v, before it begins (%v)", phaseNames[i], c, prev)
		}
		ph[i] = c - prev
		prev = c
	}
	// The tool's own figure, from "copied … in 6.2s and checked them".
	var reported time.Duration
	lines.mu.Lock()
	for _, l := range lines.lines {
		if m := copiedLine.FindStringSubmatch(l.text); m != nil {
			reported, _ = time.ParseDuration(m[2])
		}
	}
	lines.mu.Unlock()
	return ph, reported, len(pre), nil
}

// checkSplit makes sure the split did what it claims: the container runs
// v0.5.1 with the cache volume at the v0.x cache path and --cache-dir, the
// cache volume holds the whole tree, the data volume none of it, and a
// plan finds nothing left to do.
func (b *bench) checkSplit(ctx context.Context, d *deployment, res *splitResults) error {
	j, err := b.cli.ContainerInspect(ctx, d.name)
	if err != nil {
		return err
	}
	if j.State == nil || !j.State.Running || j.Config == nil || j.Config.Image != imageRepo+":"+toTag {
		return fmt.Errorf("after the split, %s does not run %s:%s", d.name, imageRepo, toTag)
	}
	mounted := false
	for _, m := range j.Mounts {
		mounted = mounted || m.Name == d.name+"-cache" && m.Destination == config.CachePathSQLite
	}
	if !mounted || !slices.Contains(j.Args, "--cache-dir") {
		return fmt.Errorf("after the split, %s mounts %s at %s: %t, args %q", d.name, d.name+"-cache", config.CachePathSQLite, mounted, j.Args)
	}
	files, n, err := b.treeSize(ctx, d.name+"-cache", "")
	if err != nil {
		return err
	}
	if files != res.files || n != res.bytes {
		return fmt.Errorf("after the split, %s-cache holds %d files, %d bytes; want %d, %d", d.name, files, n, res.files, res.bytes)
	}
	if files, _, err := b.treeSize(ctx, d.name+"-data", observe.CacheInData); err != nil {
		return err
	} else if files != 0 {
		return fmt.Errorf("after the split, %s-data still holds %d files in %s", d.name, files, observe.CacheInData)
	}
	x, err := b.tool(ctx, d, nil, "plan", "--detailed-exitcode")
	if err != nil {
		return err
	}
	if x.exit != 0 {
		return fmt.Errorf("plan after the split of %s: exit %d, want 0 (no changes)\n%s", d.name, x.exit, x.output())
	}
	return nil
}

// rawTreeCopy sets up a deployment the same way (not timed), stops its
// container and creates an empty cache volume (not timed), then times one
// one-off container of the same image, both volumes mounted, running
// `cp -a /src/cache/. /dst/` and nothing else: create → removed. The copy
// is checked (file count and bytes, not timed).
func (b *bench) rawTreeCopy(ctx context.Context, res *splitResults) (time.Duration, error) {
	d, err := b.splitSetup(ctx, "raw", res)
	if err != nil {
		return 0, err
	}
	grace := int(stopGrace / time.Second)
	if err := b.cli.ContainerStop(ctx, d.name, container.StopOptions{Timeout: &grace}); err != nil {
		return 0, err
	}
	if _, err := b.cli.VolumeCreate(ctx, volume.CreateOptions{Name: d.name + "-cache", Labels: map[string]string{labelRun: b.runID}}); err != nil {
		return 0, err
	}
	r, err := b.oneOff(ctx, `cp -a /src/`+observe.CacheInData+`/. /dst/`, nil,
		volMount(d.name+"-data", "/src", true), volMount(d.name+"-cache", "/dst", false))
	if err != nil {
		return 0, fmt.Errorf("raw copy of %s: %w", d.name, err)
	}
	files, n, err := b.treeSize(ctx, d.name+"-cache", "")
	if err != nil {
		return 0, err
	}
	if files != res.files || n != res.bytes {
		return 0, fmt.Errorf("raw copy: %s-cache holds %d files, %d bytes; want %d, %d", d.name, files, n, res.files, res.bytes)
	}
	res.raw = append(res.raw, r.took)
	res.rawRun = append(res.rawRun, r.ran)
	stage("    raw copy %s: %v (cp %v)", d.name, r.took.Round(time.Millisecond), r.ran.Round(time.Millisecond))
	return r.took, b.teardown(ctx, d)
}

// --- report ---------------------------------------------------------------

func (sp *splitResults) phaseMedian(i int) time.Duration {
	var xs []time.Duration
	for _, ph := range sp.phases {
		xs = append(xs, ph[i])
	}
	return medianDur(xs)
}

func (sp *splitResults) gib() float64 { return float64(sp.bytes) / (1 << 30) }

func (sp *splitResults) ran() bool {
	return sp != nil && sp.skipped == "" && len(sp.raw) > 0 && sp.apply.n() > 0
}

// splitTable is the split section's results table.
func splitTable(sp *splitResults) string {
	if sp == nil {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	if sp.skipped != "" {
		p("### Cache split out of the data volume")
		p("")
		p("**Skipped**: %s. Free: %s.", sp.skipped, strings.Join(sp.free, ", "))
		p("")
		return w.String()
	}
	if !sp.ran() {
		return ""
	}
	raw := medianDur(sp.raw)
	p("### Cache split of a %.2f GiB model cache out of the data volume against a raw copy of the same tree (%d runs each, alternating, fresh deployment each run)", sp.gib(), len(sp.raw))
	p("")
	p("| Measurement | Runs | Median | Min | Max | MiB/s (median) | Time ÷ raw copy (medians) |")
	p("|---|---:|---:|---:|---:|---:|---:|")
	row := func(name string, ds []time.Duration, rate bool, ratio bool) {
		s := statsOf(ds)
		r, x := "", ""
		if rate {
			r = fmt.Sprintf("%.0f", mibps(sp.bytes, s.median))
		}
		if ratio {
			x = fmt.Sprintf("%.2f×", float64(s.median)/float64(raw))
		}
		p("| %s | %d | %s | %s | %s | %s | %s |", name, len(ds), sec(s.median), sec(s.min), sec(s.max), r, x)
	}
	row("raw copy: one one-off container of the image, `cp -a /src/cache/. /dst/` (create → removed)", sp.raw, true, true)
	row("… of which `cp` runs (the container's `StartedAt` → `FinishedAt`)", sp.rawRun, true, true)
	row("`gpustack-deploy apply --auto-approve` doing the split: the process, start to exit", sp.apply.walls, false, true)
	var cp []time.Duration
	for _, ph := range sp.phases {
		cp = append(cp, ph[phCopy])
	}
	row("… its copy: the `cp -a` one-off container (create → removed, engine events)", cp, true, true)
	row("… its copy as the tool reports it (\"copied … in …\")", sp.reported, true, true)
	row("downtime a client sees (`GET /healthz` every 10ms; first failed poll → first 200)", sp.down, false, true)
	row("… the outage began after (process start → first failed poll)", sp.lead, false, false)
	p("")
	p("The tree: %d files, %d bytes (%d × %d MiB of random data, made as one `dd if=/dev/urandom` file copied %d times, and %d small json files in `cache/%s/`).",
		sp.files, sp.bytes, splitFiles, (sp.bytes>>20)/splitFiles, splitFiles-1, len(splitJSON), splitModelDir)
	p("MiB/s is the tree's size over the duration. `apply`: CPU (median) %s, max RSS %s.", sec(sp.apply.cpu()), mib(sp.apply.maxRSS()))
	p("%s; the outage runs from the first failed poll to the first 200 received after it.", windowsText(sp.windows))
	if want := fmt.Sprintf("%d files, %s", sp.files, observe.HumanBytes(sp.bytes)); sp.planned != "" && sp.planned != want {
		p("The plan described the tree as \"%s\" (it is %s): see *Where the time goes*.", sp.planned, want)
	}
	p("")
	return w.String()
}

// splitBreakdown is the phase table.
func splitBreakdown(sp *splitResults) string {
	if !sp.ran() || len(sp.phases) == 0 {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	wall := sp.apply.median()
	p("#### Cache split by `apply`, where the time goes (medians of %d runs; cut at its progress lines and at the engine's create and destroy events of its one-off containers)", len(sp.phases))
	p("")
	p("| Phase | Median | Share (of the median %s) | MiB/s of the tree | GPUStack |", sec(wall))
	p("|---|---:|---:|---:|---|")
	var sum time.Duration
	for i := range numPh {
		d := sp.phaseMedian(i)
		sum += d
		rate := ""
		if phaseData[i] && d > 0 {
			rate = fmt.Sprintf("%.0f", mibps(sp.bytes, d))
		}
		state := "up"
		if i >= phStop && i <= phVerify {
			state = "down"
		}
		p("| %s | %s | %s | %s | %s |", phaseNames[i], sec(d), share(d, wall), rate, state)
	}
	p("| sum of the phase medians | %s | %s | | |", sec(sum), share(sum, wall))
	p("")
	p("\"down\" is the span from the stop to a verified new container; the client's outage (median %s) ends earlier, at the new container's first 200.", sec(medianDur(sp.down)))
	if lo, hi := slices.Min(sp.observeHelpers), slices.Max(sp.observeHelpers); hi > 0 {
		p("Before the stop, observe ran %s one-off container(s) (counting the files in `<data>/cache`).", rangeText(lo, hi))
	}
	p("")
	return w.String()
}

func rangeText(lo, hi int) string {
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}

// splitSummary is the split's bullet in "Where the time goes".
func splitSummary(sp *splitResults) string {
	if !sp.ran() || len(sp.phases) == 0 {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	raw, wall := medianDur(sp.raw), sp.apply.median()
	cp, sums := sp.phaseMedian(phCopy), sp.phaseMedian(phSums)
	sizes, rm := sp.phaseMedian(phSizes), sp.phaseMedian(phRemove)
	repl := sp.phaseMedian(phReplace) + sp.phaseMedian(phVerify) + sp.phaseMedian(phPrevious)
	p("- **Cache split of %.2f GiB**: `apply` takes %s, %.1f× the raw copy of the same tree (%s, %.0f MiB/s), and a client sees GPUStack down for %s.",
		sp.gib(), sec(wall), float64(wall)/float64(raw), sec(raw), mibps(sp.bytes, raw), sec(medianDur(sp.down)))
	var cps []time.Duration
	for _, ph := range sp.phases {
		cps = append(cps, ph[phCopy])
	}
	p("  Its copy phase, the same `cp -a` in a one-off container, takes %s (%.0f MiB/s, %s of the process); the fastest runs of both are",
		sec(cp), mibps(sp.bytes, cp), share(cp, wall))
	p("  %s and %s: the same work; the spread is this disk's, writing %.2f GiB. The sha256 lists of both sides, made at the same time",
		sec(slices.Min(cps)), sec(slices.Min(sp.raw)), sp.gib())
	p("  by `copyCache` (executor/volumes.go), take %s (%s of the process, %.1f× the copy; each `find … -exec sha256sum {} +` hashes one",
		sec(sums), share(sums, wall), float64(sums)/float64(cp))
	p("  file at a time; the emulator image's `sha256sum` is busybox's, a real image's coreutils'). GPUStack stays stopped for the copy and")
	p("  the lists: together %s of the client's outage. Replacing the container and verifying it take %s. After that, with",
		share(cp+sums, medianDur(sp.down)), sec(repl))
	p("  GPUStack up again, `removeOldCache` lists the sizes of both sides (%s) and removes the old tree (%s).", sec(sizes), sec(rm))
	if want := fmt.Sprintf("%d files, %s", sp.files, observe.HumanBytes(sp.bytes)); sp.planned != "" && sp.planned != want {
		p("  Not time but a wrong figure: the plan and its warning describe the tree as \"%s\" (it is %s), as `observe.Measure` (observe/usage.go) counted it.", sp.planned, want)
	}
	return w.String()
}

// splitMethod is the method bullet of the split section.
func splitMethod(p func(string, ...any), b *bench) {
	p("- **Cache split**: each run gets a fresh deployment at %s **without** cache volume (its file as `TestCacheSplitOutOfTheDataVolume` writes", toTag)
	p("  it: `volume \"data\"` only, `policy { pull = \"never\" }`), applied (not timed); a one-off container of the image fills `<data>/%s/%s` with", observe.CacheInData, splitModelDir)
	p("  %d files of %d MiB (one `dd if=/dev/urandom`, then `cp`) and %d small json files, the bench checks the tree (file count, bytes) and", splitFiles, b.o.splitMiB/splitFiles, len(splitJSON))
	p("  rewrites the file with `volume \"cache\" { name = … }`, then calls `sync(2)` so that no method pays for the fill's writeback (none of it timed).")
	p("  The methods alternate, %d runs each. **Split**: `gpustack-deploy apply --auto-approve`, timed as a process like the others, while the", b.o.splitRuns)
	p("  downtime section's client polls `/healthz` every %v and the bench records the engine's container events of the deployment", downtimePoll)
	p("  (`GET /events`, label `%s`): the phases are cut at the tool's progress lines and at the create and destroy events of", labelDeployment)
	p("  its one-off containers (copy, sha256 of each side, size of each side, `rm`). Every split is checked: the container runs `%s:%s`", imageRepo, toTag)
	p("  with the cache volume at `%s` and `--cache-dir`, the cache volume holds every file and byte, `<data>/%s` none, and", config.CachePathSQLite, observe.CacheInData)
	p("  `plan --detailed-exitcode` exits 0. **Raw copy**: GPUStack stopped and an empty cache volume created (not timed), one one-off")
	p("  container of the same image, both volumes mounted (source read-only), runs `cp -a /src/%s/. /dst/` and nothing else, created, started,", observe.CacheInData)
	p("  waited for and removed through the Engine API as `engine.RunTool` does (timed), and its copy checked (file count and bytes, not timed).")
	p("  The tree stays in the page cache (%s of memory): both methods read it from memory and write through the page cache.", b.facts.memory)
	p("  The section is skipped, saying so, when a directory it writes to has less than %d GiB free.", max(minFreeSplit>>30, 4*b.o.splitMiB>>10))
}

// splitReproduce is its line in the Reproduce block.
const splitReproduce = "go run ./bench -only split -update                # rerun one section, merged into docs/benchmarks.md"
