package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

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
