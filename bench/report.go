package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Targets from the issue. They are compared with the figures, never used to
// shape the measurement.
const (
	targetPlanMedian   = 150 * time.Millisecond
	targetPlanRSSKiB   = 64 * 1024
	targetUpgradeRatio = 1.2
)

func missed(r *results) bool {
	if r.plan.median() >= targetPlanMedian || r.plan.maxRSS() >= targetPlanRSSKiB {
		return true
	}
	return ratio(r, methodNoBackup) > targetUpgradeRatio
}

func ratio(r *results, m int) float64 {
	base := r.upgrade[methodBaseline].median()
	if base == 0 {
		return 0
	}
	return float64(r.upgrade[m].median()) / float64(base)
}

type rendered struct{ stdout, markdown string }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func mib(kib int64) string {
	if kib == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

// cpuMs is the median CPU time of the binary (user + system), "—" for the
// in-process baseline.
func cpuMs(s series) string {
	if len(s.cpus) == 0 {
		return "—"
	}
	return ms(s.cpu())
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// tables are the figures, in markdown, shared by stdout and the file.
func tables(b *bench, r *results) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	if r.version.n() > 0 {
		planTables(p, b, r)
	}
	if r.upgrade[methodBaseline].n() > 0 {
		upgradeTable(p, r)
	}
	w.WriteString(backupTable(r.backup))
	w.WriteString(downtimeTable(r.downtime))
	return w.String()
}

func planTables(p func(string, ...any), b *bench, r *results) {
	row := func(name string, s series, target, result string) {
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %s |", name, s.n(), ms(s.median()), ms(s.p90()), ms(s.min()), cpuMs(s), mib(s.maxRSS()), target, result)
	}
	p("### No-op plan of one deployment (process wall time, start to exit)")
	p("")
	p("| Measurement | Runs | Median | p90 | Min | CPU (median) | Max RSS | Target | Result |")
	p("|---|---:|---:|---:|---:|---:|---:|---|---|")
	row("`version` — process start and exit only", r.version, "", "reference")
	row("`validate` — + reading the HCL file, no Docker", r.validate, "", "reference")
	planOK := r.plan.median() < targetPlanMedian && r.plan.maxRSS() < targetPlanRSSKiB
	row(fmt.Sprintf("`plan` no-op, engine as found (%d containers, %d volumes)", r.enginePlain.containers, r.enginePlain.volumes),
		r.plan, "median < 150 ms, RSS < 64 MiB", verdict(planOK))
	if r.planLoaded.n() > 0 {
		loadedOK := r.planLoaded.median() < targetPlanMedian && r.planLoaded.maxRSS() < targetPlanRSSKiB
		row(fmt.Sprintf("`plan` no-op, + %d unrelated containers and %d volumes (%d / %d)", b.o.unrelated, b.o.unrelated, r.engineLoaded.containers, r.engineLoaded.volumes),
			r.planLoaded, "same, for information", verdict(loadedOK))
	}
	if r.planAfter.n() > 0 {
		afterOK := r.planAfter.median() < targetPlanMedian && r.planAfter.maxRSS() < targetPlanRSSKiB
		row("`plan` no-op, engine as found, again after removing them", r.planAfter, "same, for information", verdict(afterOK))
	}
	p("")
}

func upgradeTable(p func(string, ...any), r *results) {
	p("### Upgrade %s → %s, fresh deployment each run, methods alternating", fromTag, toTag)
	p("")
	p("| Method | Runs | Median | p90 | Min | CPU (median) | Max RSS | Ratio to unguarded (medians) | Target |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---|")
	names := [numMethods]string{
		"unguarded: stop, remove, create, start through the Engine API, until `/healthz` = 200",
		"`gpustack-deploy apply`, `backup { before_upgrade = false }`",
		"`gpustack-deploy apply`, default backup policy (backup before upgrade)",
	}
	targets := [numMethods]string{"baseline", "≤ 1.2×: " + verdict(ratio(r, methodNoBackup) <= targetUpgradeRatio), "for information"}
	for m := range numMethods {
		s := r.upgrade[m]
		p("| %s | %d | %s | %s | %s | %s | %s | %.2f× | %s |", names[m], s.n(), ms(s.median()), ms(s.p90()), ms(s.min()), cpuMs(s), mib(s.maxRSS()), ratio(r, m), targets[m])
	}
	p("")
}

// breakdown is the "where the time goes" part; full adds the timelines
// and the loaded plan's calls (for the file, not stdout).
func breakdown(r *results, full bool) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }

	ph := r.phases
	if len(ph.load) > 0 {
		sum := medianDur(ph.load) + medianDur(ph.dial) + medianDur(ph.observe) + medianDur(ph.plan) + medianDur(ph.render)
		p("#### No-op plan, in-process phases (medians of %d runs, same calls as the command)", len(ph.load))
		p("")
		p("| Phase | Median |")
		p("|---|---:|")
		p("| `config.Load` of the file | %s |", ms(medianDur(ph.load)))
		p("| `engine.Dial` (client, `/_ping`) | %s |", ms(medianDur(ph.dial)))
		p("| `observe.Observe` (inspects, database copy and schema read, `/healthz` probe) | %s |", ms(medianDur(ph.observe)))
		p("| `planner.Plan` | %s |", ms(medianDur(ph.plan)))
		p("| `render.Plan` | %s |", ms(medianDur(ph.render)))
		p("| sum | %s |", ms(sum))
		p("| the process's median minus the sum: exec, runtime and package init, exit | %s |", ms(r.plan.median()-sum))
		p("")
	}
	if run, ok := representative(r.traces["plan"]); ok {
		p("#### No-op plan, Engine API calls (one traced run, %s wall)", ms(run.wall))
		p("")
		writeCalls(&w, run.calls, run.wall, true)
		p("")
	}
	if run, ok := representative(r.traces["plan-loaded"]); ok && full {
		p("#### No-op plan with the unrelated containers and volumes, Engine API calls (one traced run, %s wall)", ms(run.wall))
		p("")
		writeCalls(&w, run.calls, run.wall, true)
		p("")
	}
	if len(r.baseSteps) > 0 {
		p("#### Unguarded upgrade, steps (medians of %d runs)", len(r.baseSteps))
		p("")
		p("| Step | Median |")
		p("|---|---:|")
		for _, step := range baseStepNames {
			p("| %s | %s |", step.name, ms(baseMedian(r, step.get)))
		}
		p("| probes until 200 (median count) | %d |", int(baseMedian(r, func(s baselineSteps) time.Duration { return time.Duration(s.probes) })))
		p("")
	}
	if rows := overhead(r); len(rows) > 0 {
		n := len(r.traces[methodKinds[methodNoBackup]])
		p("#### Upgrade without backup against unguarded, part by part")
		p("")
		p("The tool's parts are medians of %d traced runs (split at Engine API calls, see below), the unguarded ones medians of its timed runs.", n)
		p("")
		p("| Part | `apply`, no backup | Unguarded | Difference |")
		p("|---|---:|---:|---:|")
		for _, row := range rows {
			p("| %s | %s | %s | %+.1f ms |", row.name, ms(row.tool), ms(row.base), float64(row.tool-row.base)/float64(time.Millisecond))
		}
		p("")
	}
	for _, m := range []int{methodNoBackup, methodBackup} {
		runs := r.traces[methodKinds[m]]
		run, ok := representative(runs)
		if !ok {
			continue
		}
		title := map[int]string{methodNoBackup: "`apply` without backup", methodBackup: "`apply` with backup"}[m]
		p("#### Upgrade by %s, traced (%d runs; calls of the median one, %s wall)", title, len(runs), ms(run.wall))
		p("")
		if rows := phaseMedians(runs); len(rows) > 0 {
			p("| Phase (split at Engine API calls; medians) | Duration |")
			p("|---|---:|")
			for _, row := range rows {
				p("| %s | %s |", row.name, ms(row.d))
			}
			p("")
		}
		if full {
			writeTimeline(&w, run.calls)
			p("")
		}
		writeCalls(&w, run.calls, run.wall, false)
		p("")
	}
	if r.profileTop != "" {
		p("#### CPU profile of in-process no-op plans (`go tool pprof -top`)")
		p("")
		p("```")
		w.WriteString(strings.TrimSpace(r.profileTop) + "\n")
		p("```")
		p("")
	}
	return w.String()
}

var baseStepNames = []struct {
	name string
	get  func(baselineSteps) time.Duration
}{
	{"new client + `/_ping`", func(s baselineSteps) time.Duration { return s.connect }},
	{"`ContainerStop` (SIGTERM; the emulator exits at once)", func(s baselineSteps) time.Duration { return s.stop }},
	{"`ContainerRemove`", func(s baselineSteps) time.Duration { return s.remove }},
	{"`ContainerCreate`", func(s baselineSteps) time.Duration { return s.create }},
	{"`ContainerStart`", func(s baselineSteps) time.Duration { return s.start }},
	{"start → first `/healthz` 200 (100 ms ticker)", func(s baselineSteps) time.Duration { return s.healthy }},
}

func baseMedian(r *results, get func(baselineSteps) time.Duration) time.Duration {
	var xs []time.Duration
	for _, s := range r.baseSteps {
		xs = append(xs, get(s))
	}
	return medianDur(xs)
}

// representative is the run with the median wall time.
func representative(runs []tracedRun) (tracedRun, bool) {
	if len(runs) == 0 {
		return tracedRun{}, false
	}
	sorted := append([]tracedRun(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].wall < sorted[j].wall })
	return sorted[len(sorted)/2], true
}

// phaseMedians is applyPhases row by row over runs, plus the wall time.
func phaseMedians(runs []tracedRun) []phaseRow {
	var per [][]phaseRow
	var walls []time.Duration
	for _, run := range runs {
		if rows := applyPhases(run.calls, run.wall); rows != nil {
			per = append(per, rows)
			walls = append(walls, run.wall)
		}
	}
	if len(per) == 0 {
		return nil
	}
	out := make([]phaseRow, len(per[0]))
	for i := range out {
		var xs []time.Duration
		for _, rows := range per {
			xs = append(xs, rows[i].d)
		}
		out[i] = phaseRow{name: per[0][i].name, d: medianDur(xs)}
	}
	return append(out, phaseRow{name: "wall time (median of these runs)", d: medianDur(walls)})
}

type overheadRow struct {
	name       string
	tool, base time.Duration
}

// overhead sets the traced no-backup apply's phases against the unguarded
// steps.
func overhead(r *results) []overheadRow {
	rows := phaseMedians(r.traces[methodKinds[methodNoBackup]])
	if len(rows) == 0 || len(r.baseSteps) == 0 {
		return nil
	}
	st := func(get func(baselineSteps) time.Duration) time.Duration { return baseMedian(r, get) }
	connect := st(func(s baselineSteps) time.Duration { return s.connect })
	change := st(func(s baselineSteps) time.Duration { return s.stop }) + st(func(s baselineSteps) time.Duration { return s.remove }) +
		st(func(s baselineSteps) time.Duration { return s.create }) + st(func(s baselineSteps) time.Duration { return s.start })
	healthy := st(func(s baselineSteps) time.Duration { return s.healthy })
	out := []overheadRow{
		{"start-up, connect, observe and plan", rows[0].d + rows[1].d, connect},
		{"stop … start (tool: + inspects, rename instead of remove)", rows[2].d, change},
		{"until `/healthz` 200 (tool: + `GET /version`)", rows[3].d, healthy},
		{"read the migrated database back, check stamp and probe", rows[4].d, 0},
		{"restart policy, remove the previous container, exit", rows[5].d + rows[6].d, 0},
	}
	var tool, base time.Duration
	for _, o := range out {
		tool += o.tool
		base += o.base
	}
	return append(out, overheadRow{"sum of the parts", tool, base})
}

// writeCalls writes the calls summed per endpoint.
func writeCalls(w *strings.Builder, calls []call, wall time.Duration, gaps bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("| Engine API endpoint | Calls | Total | Max |")
	p("|---|---:|---:|---:|")
	var sum time.Duration
	for _, e := range aggregate(calls) {
		note := ""
		if streaming(e.endpoint) {
			note = " (stream, open while waiting)"
		} else {
			sum += e.total
		}
		p("| `%s`%s | %d | %s | %s |", e.endpoint, note, e.count, ms(e.total), ms(e.max))
	}
	p("| all calls except streams | %d | %s | |", countNonStreaming(calls), ms(sum))
	if gaps && len(calls) > 0 {
		last := lastEnd(calls)
		p("| *before the first call: exec, init, config load* | | %s | |", ms(calls[0].start))
		p("| *after the last call: schema read of the copy, `/healthz` probe, render, exit* | | %s | |", ms(wall-last))
	}
}

func writeTimeline(w *strings.Builder, calls []call) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("<details><summary>Timeline of the Engine API calls</summary>")
	p("")
	p("| Start | Duration | Call | Status |")
	p("|---:|---:|---|---:|")
	for _, c := range calls {
		p("| %s | %s | `%s` | %d |", ms(c.start), ms(c.dur), c.endpoint(), c.status)
	}
	p("")
	p("</details>")
}

func streaming(endpoint string) bool {
	return strings.Contains(endpoint, "/wait") || strings.Contains(endpoint, "follow=")
}

func countNonStreaming(calls []call) int {
	n := 0
	for _, c := range calls {
		if !streaming(c.endpoint()) {
			n++
		}
	}
	return n
}

func lastEnd(calls []call) time.Duration {
	var last time.Duration
	for _, c := range calls {
		if !streaming(c.endpoint()) {
			last = max(last, c.start+c.dur)
		}
	}
	return last
}

type phaseRow struct {
	name string
	d    time.Duration
}

// applyPhases splits an apply's wall time at markers found in its trace:
// the first call, the first change, the end of the new container's start,
// the first stat of the database after it (GPUStack answered /healthz and
// /version), the restart-policy update, the last call. Nil when a marker is
// missing.
func applyPhases(calls []call, wall time.Duration) []phaseRow {
	if len(calls) == 0 {
		return nil
	}
	firstChange, started, verifyDB, update := time.Duration(-1), time.Duration(-1), time.Duration(-1), time.Duration(-1)
	for _, c := range calls {
		e := c.endpoint()
		if firstChange < 0 && (c.method == "POST" || c.method == "DELETE" || c.method == "PUT") && !streaming(e) {
			firstChange = c.start
		}
		if strings.HasSuffix(c.path, "/start") {
			started = c.start + c.dur
		}
	}
	for _, c := range calls {
		if started >= 0 && verifyDB < 0 && c.method == "HEAD" && strings.Contains(c.path, "/archive") && c.start > started {
			verifyDB = c.start
		}
		if update < 0 && strings.HasSuffix(c.path, "/update") {
			update = c.start
		}
	}
	last := lastEnd(calls)
	first := calls[0].start
	if firstChange < 0 || started < 0 || verifyDB < 0 || update < 0 || !(first <= firstChange && firstChange <= started && started <= verifyDB && verifyDB <= update && update <= last && last <= wall) {
		return nil
	}
	return []phaseRow{
		{"process start → first Engine API call (exec, init, config load)", first},
		{"observe and plan (inspects, database copy and schema read, `/healthz` probe)", firstChange - first},
		{"changes until the new container is started (backup if any, stop, rename, create, start)", started - firstChange},
		{"new container started → `/healthz` 200 and `/version` checked (100 ms ticker)", verifyDB - started},
		{"read the migrated database back: stamp and schema probe", update - verifyDB},
		{"restart policy, remove the previous container", last - update},
		{"after the last call: results, exit", wall - last},
	}
}

func renderReport(b *bench, r *results) rendered {
	t := tables(b, r)
	var out strings.Builder
	out.WriteString("\n" + t + "\n")
	out.WriteString(splitTable(r.split))
	out.WriteString(v2Table(r.v2))
	out.WriteString(peersTable(r.peers, t))
	out.WriteString("### Where the time goes\n\n")
	out.WriteString(summary(r, splitSummary(r.split)+peersSummary(r.peers)))
	out.WriteString(breakdown(r, false))
	out.WriteString(backupBreakdown(r.backup))
	out.WriteString(splitBreakdown(r.split))

	f := b.facts
	var md strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&md, format+"\n", args...) }
	p("# Benchmarks")
	p("")
	p("Generated by `%s` on %s (%s of measuring).",
		strings.TrimSpace("go run ./bench "+strings.Join(b.o.args, " ")), r.started.UTC().Format("2006-01-02 15:04 MST"), r.finished.Sub(r.started).Round(time.Second))
	p("Every figure below comes from that one run; run it again on your machine to compare (see *Reproduce*).")
	p("")
	p("## Machine")
	p("")
	p("| | |")
	p("|---|---|")
	for _, row := range machineRows(f) {
		p("%s", row)
	}
	p("| gpustack-deploy | %s (the working tree as built; -dirty: files other than this report differ from the commit) |", f.commit)
	p("| Load average (1, 5, 15 min) | %s at the start, %s at the end |", r.loadStart, r.loadEnd)
	p("")
	if r.version.n() > 0 {
		p("The engine was shared: it held %d containers and %d volumes that are not this run's when the no-op plan was measured", r.enginePlain.containers-1, r.enginePlain.volumes-2)
		p("(other work may have been using it at the same time, which shows in p90 more than in the medians).")
	}
	if bk := r.backup; bk != nil && len(bk.free) > 0 {
		p("Free disk space before the backup section: %s.", strings.Join(bk.free, ", "))
	}
	if sp := r.split; sp != nil && len(sp.free) > 0 {
		p("Free disk space before the split section: %s.", strings.Join(sp.free, ", "))
	}
	p("")
	p("## Method")
	p("")
	p("- The binary is built once (`go build ./cmd/gpustack-deploy`) and run as a process for every measurement, started by a")
	p("  small launcher (`bench/launch`) that takes the wall time from just before fork/exec to just after wait, and the peak memory")
	p("  as the child's `ru_maxrss` (`ProcessState.SysUsage()`, KiB on Linux). The launcher is there because Linux carries the")
	p("  parent's RSS high-water mark into a child's `ru_maxrss` across fork and exec: started from the bench process itself, `version`")
	p("  reported the bench's own peak (17 to 22 MiB in a trial) instead of the binary's. The launcher's own peak was %s, so no RSS", mib(b.launcherHWM))
	p("  figure below can be inflated beyond that.")
	p("  CPU is the binary's user + system time (`ProcessState.UserTime() + SystemTime()`), median: the rest of the wall time it waits,")
	p("  mostly for the Docker engine. Medians are the figures to compare; p90 is nearest-rank.")
	p("- GPUStack is the emulator (`emulator/`), in images built locally by `emulator/image` under the real tags")
	p("  (`%s:%s`, `%s:%s`): the same start-up, Alembic stamping, `/healthz` and `/version` as the releases, in an image of %s.", imageRepo, fromTag, imageRepo, toTag, f.imageSize)
	p("  Deployments look like `examples/basic`: a v0.x CPU server with a data and a cache volume, `--disable-worker`, published on `127.0.0.1` only.")
	if b.o.has("plan") {
		p("- **No-op plan**: one deployment at %s is applied (not timed), then `plan --detailed-exitcode` must exit 0 (no changes).", toTag)
		p("  %d warm-up runs, then %d timed runs. `version` and `validate` are timed the same way as reference points. The loaded variant", b.o.warmup, b.o.runs)
		p("  adds %d containers (created from `%s:%s`, never started) and %d volumes that the deployment does not use.", b.o.unrelated, imageRepo, fromTag, b.o.unrelated)
	}
	if b.o.has("upgrade") {
		p("- **Upgrade**: each round runs the three methods in rotating order; each method gets a fresh deployment (new names, volumes and port) brought")
		p("  to %s by `apply` first (not timed). The tool is timed from process start to exit of `apply --auto-approve --var version=%s`, which observes,", fromTag, toVer)
		p("  plans, (backs up,) replaces the container keeping the old one aside, waits for `/healthz` (100 ms poll), checks `/version`, the stamped")
		p("  revision and the schema probe, sets the restart policy and removes the old container. The **unguarded** baseline is done in-process")
		p("  through `github.com/docker/docker/client`: new client and `/_ping`, `ContainerStop` (%s grace, as the tool), `ContainerRemove`,", stopGrace)
		p("  `ContainerCreate` with the container `spec.For` derives (same image, args, env, volumes, port), `ContainerStart`, then `GET /healthz` on")
		p("  a %s ticker, as the executor's default `PollInterval`, until 200. Every run is checked: the container runs `%s:%s`, and the", healthPoll, imageRepo, toTag)
		p("  backup store holds one backup with the default policy and none without.")
	}
	if b.o.has("plan") || b.o.has("upgrade") {
		p("- **Where the time goes**: in-process phases call the same functions as `plan` (`config.Load`, `engine.Dial`, `observe.Observe`,")
		p("  `planner.Plan`, `render.Plan`). The Engine API traces come from extra runs (one of each plan, %d of each apply method) with", tracedUpgrades)
		p("  `--docker-host` pointing at a recording reverse proxy of the engine's socket; they are not part of the timed figures.")
	}
	if b.o.has("backup") {
		backupMethod(p, b)
	}
	if b.o.has("downtime") {
		downtimeMethod(p, b)
	}
	md.WriteString(marked("split", placeMethod, splitMethodText(b)))
	md.WriteString(marked("peers", placeMethod, peersMethodText(b, r.peers)))
	md.WriteString(marked(v2Section, placeMethod, v2MethodText(b)))
	p("")
	p("## Results")
	p("")
	md.WriteString(t)
	md.WriteString(marked("split", placeResults, splitTable(r.split)))
	md.WriteString(marked("peers", placeResults, peersTable(r.peers, t)))
	md.WriteString(marked(v2Section, placeResults, v2Table(r.v2)))
	p("")
	p("## Where the time goes")
	p("")
	md.WriteString(summary(r, marked("split", placeSummary, splitSummary(r.split))+marked("peers", placeSummary, peersSummary(r.peers))))
	md.WriteString(breakdown(r, true))
	md.WriteString(backupBreakdown(r.backup))
	md.WriteString(marked("split", placeBreakdown, splitBreakdown(r.split)))
	if r.goBench != "" {
		p("## Go benchmarks of the pure parts")
		p("")
		p("`bench/plan_bench_test.go`: `planner.Plan` on literal desired and observed values (1 and 200 deployments, no-op and upgrade),")
		p("and `config.Load` of `examples/basic` and of a generated file with 200 deployments.")
		p("")
		p("```")
		md.WriteString(strings.TrimSpace(r.goBench) + "\n")
		p("```")
		p("")
	}
	p("## Reproduce")
	p("")
	p("Go %s or later with a C compiler, and a Docker engine (20.10 or later) on the local socket or `DOCKER_HOST`:", strings.TrimPrefix(f.goVersion, "go"))
	p("")
	p("```sh")
	p("docker version || (nohup dockerd >/tmp/dockerd.log 2>&1 &)")
	p("go run ./bench                      # writes docs/benchmarks.md, prints the tables")
	p("go run ./bench -runs 30 -out ''     # more runs, stdout only")
	p("go run ./bench -profile -keep       # also CPU-profile the in-process plan; keep the temp dir")
	p("go run ./bench -only backup,downtime              # some sections only: stdout, the file is left as it is")
	p("go run ./bench -only downtime -downtime-runs 20 -startup-delay 10s")
	p("go run ./bench -only backup -backup-runs 5 -backup-mib 2048 -out /tmp/backup.md")
	p("%s", splitReproduce)
	p("%s", peersReproduce)
	p("%s", v2Reproduce)
	p("go test -run '^$' -bench . -benchmem ./bench   # the pure-Go benchmarks alone")
	p("```")
	p("")
	p("The measuring took %s here, plus the builds and the Go benchmarks. Sections: %s (`-only`). No registry is needed: the emulator images are built",
		r.finished.Sub(r.started).Round(time.Second), strings.Join(ranSections(b), ", "))
	p("locally (and kept, like the demo's).")
	p("Every container and volume it creates is named `gsdbench-<run>-…` and labelled `%s=<run>`; all of them are removed at the end,", labelRun)
	p("also after a failure or Ctrl-C. Only loopback ports are published.")
	return rendered{stdout: out.String(), markdown: md.String()}
}

// machineRows are the rows of the Machine table that describe the machine
// (not the build or the load).
func machineRows(f facts) []string {
	return []string{
		fmt.Sprintf("| CPUs | %d × %s |", f.cpus, f.cpuModel),
		fmt.Sprintf("| Memory | %s |", f.memory),
		fmt.Sprintf("| Kernel | %s |", f.kernel),
		fmt.Sprintf("| Docker | %s |", f.docker),
		fmt.Sprintf("| Disk (temporary directory, backups) | %s |", f.disk),
		fmt.Sprintf("| Go | %s |", f.goVersion),
	}
}

// splitMethodText is the split's method bullet, "" when it did not run.
func splitMethodText(b *bench) string {
	if !b.o.has("split") {
		return ""
	}
	var w strings.Builder
	splitMethod(func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }, b)
	return w.String()
}

// summary says in a few lines what the tables below show; extra (whole
// lines) goes after the other bullets.
func summary(r *results, extra string) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	var copies, heads []time.Duration
	for _, runs := range r.traces {
		for _, run := range runs {
			for _, c := range run.calls {
				if !strings.Contains(c.path, "/archive") || c.status != 200 {
					continue
				}
				switch c.method {
				case "GET":
					copies = append(copies, c.dur)
				case "HEAD":
					heads = append(heads, c.dur)
				}
			}
		}
	}
	if r.plan.n() > 0 && len(r.phases.observe) > 0 {
		p("- **No-op plan**: median %s, of which the binary spends %s on the CPU. Starting and exiting the process costs %s (`version`);",
			ms(r.plan.median()), ms(r.plan.cpu()), ms(r.version.median()))
		p("  `observe.Observe` takes %s in process, most of it the one copy of `database.db` out of the container.", ms(medianDur(r.phases.observe)))
		if r.planLoaded.n() > 0 {
			p("  With %d unrelated containers and %d volumes on the engine the median is %s (%s before adding them, %s after removing", r.unrelated, r.unrelated,
				ms(r.planLoaded.median()), ms(r.plan.median()), ms(r.planAfter.median()))
			p("  them): the plan inspects its own objects by name and never lists containers or volumes.")
		}
	}
	if len(copies) > 0 && len(heads) > 0 {
		p("- **Copies out of a container**: a successful `GET /containers/{id}/archive` took a median %s (%d calls in the traces), a `HEAD`", ms(medianDur(copies)), len(copies))
		p("  of the same paths %s. On this engine (Docker 20.10) every such copy runs in a re-executed `dockerd` (`docker-tar`,", ms(medianDur(heads)))
		p("  chrooted into the container's root filesystem, visible in `ps` during a copy), whatever the size: the few-byte `token` costs")
		p("  as much as the database. A no-op plan makes one such copy; an upgrade without backup two (observe, verify); with backup five.")
	}
	if rows := overhead(r); len(rows) > 0 {
		total := rows[len(rows)-1]
		diff := total.tool - total.base
		p("- **Upgrade without backup**: the tool adds about %s to the unguarded replacement (part by part below): start-up, observe", ms(diff))
		p("  and plan (%s), reading the migrated database back (%s), the restart-policy update and removing the kept container (%s).",
			ms(rows[0].tool-rows[0].base), ms(rows[3].tool), ms(rows[4].tool))
		p("  Stop … start and the wait for `/healthz` differ by %s and %s. To stay within 1.2× the unguarded replacement must take at least",
			ms(rows[1].tool-rows[1].base), ms(rows[2].tool-rows[2].base))
		p("  5 × that, %s; with the emulator, which answers at the first 100 ms tick, it takes %s. A real GPUStack start takes longer,", ms(5*diff), ms(r.upgrade[methodBaseline].median()))
		p("  so the same fixed cost weighs less there; the downtime section measures it with a start-up delay.")
	}
	w.WriteString(backupSummary(r.backup))
	w.WriteString(downtimeSummary(r.downtime))
	w.WriteString(extra)
	p("")
	return w.String()
}
