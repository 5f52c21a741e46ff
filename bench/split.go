package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"

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
