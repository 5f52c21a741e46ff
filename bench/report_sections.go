package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// durStats are the order statistics the new sections report.
type durStats struct{ median, p90, min, max time.Duration }

func statsOf(ds []time.Duration) durStats {
	if len(ds) == 0 {
		return durStats{}
	}
	s := series{walls: ds}
	return durStats{median: s.median(), p90: s.p90(), min: s.min(), max: slices.Max(ds)}
}

func sec(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return ms(d)
}

func share(part, whole time.Duration) string {
	if whole <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f %%", 100*float64(part)/float64(whole))
}

// backupTable is the backup section's results table.
func backupTable(bk *backupResults) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	if bk == nil {
		return ""
	}
	if bk.skipped != "" {
		p("### Backup throughput")
		p("")
		p("**Skipped**: %s. Free: %s.", bk.skipped, strings.Join(bk.free, ", "))
		p("")
		return w.String()
	}
	gib := float64(bk.dbBytes) / (1 << 30)
	raw := statsOf(bk.raw)
	p("### Backup of a %.2f GiB database against a raw copy of the same file (%d runs each, methods alternating)", gib, len(bk.raw))
	p("")
	p("| Measurement | Runs | Median | Min | Max | MiB/s (median) | Time ÷ raw copy (medians) |")
	p("|---|---:|---:|---:|---:|---:|---:|")
	row := func(name string, ds []time.Duration, ratio bool) {
		s := statsOf(ds)
		rt := "—"
		if ratio && raw.median > 0 {
			rt = fmt.Sprintf("%.2f×", float64(s.median)/float64(raw.median))
		}
		p("| %s | %d | %s | %s | %s | %.0f | %s |", name, len(ds), sec(s.median), sec(s.min), sec(s.max), mibps(bk.dbBytes, s.median), rt)
	}
	row("raw copy: `CopyFromContainer` of `database.db` from the stopped container into a local file, `fsync` (stop, start not included)", bk.raw, true)
	row("`gpustack-deploy backup -f …`, the process (start-up, observe, stop, back up, start, exit)", bk.cli.walls, true)
	row("… of which the container is stopped (\"stopping … for a consistent backup\" → \"… started again\")", bk.cliDown, true)
	row("`executor.TakeBackup` in process, container stopped by the bench (stop, start not included)", bk.inProc, true)
	row("… its copy of `database.db` (`engine.Client.CopyFile`, timed around the call; no `fsync`)", bk.inProcCopy, true)
	p("| … its `-wal` and `-shm` copies, both 404 (timed the same way) | %d | %s | %s | %s | | |", len(bk.inProcProbes), sec(statsOf(bk.inProcProbes).median), sec(statsOf(bk.inProcProbes).min), sec(statsOf(bk.inProcProbes).max))
	p("| for reference: `ContainerStop` of the deployment (raw-copy runs) | %d | %s | %s | %s | | |", len(bk.rawStop), sec(statsOf(bk.rawStop).median), sec(statsOf(bk.rawStop).min), sec(statsOf(bk.rawStop).max))
	p("| for reference: `ContainerStart` of the deployment (raw-copy runs) | %d | %s | %s | %s | | |", len(bk.rawStart), sec(statsOf(bk.rawStart).median), sec(statsOf(bk.rawStart).min), sec(statsOf(bk.rawStart).max))
	p("")
	p("MiB/s is the size of `database.db` (%d bytes; the backup's self-contained copy is %d bytes) over the duration.", bk.dbBytes, bk.backupBytes)
	if bk.cli.n() > 0 {
		p("`gpustack-deploy backup`: CPU (median) %s, max RSS %s.", sec(bk.cli.cpu()), mib(bk.cli.maxRSS()))
	}
	p("")
	return w.String()
}

// backupBreakdown is where the backup's time goes, part by part.
func backupBreakdown(bk *backupResults) string {
	if bk == nil || bk.skipped != "" {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	if len(bk.cliBefore) > 0 {
		wall := bk.cli.median()
		before, down, after := medianDur(bk.cliBefore), medianDur(bk.cliDown), medianDur(bk.cliAfter)
		p("#### `gpustack-deploy backup`, split at its progress lines (medians of %d runs)", len(bk.cliBefore))
		p("")
		p("| Part | Median | Share of the process (median %s) |", sec(wall))
		p("|---|---:|---:|")
		p("| process start → \"stopping … for a consistent backup\": start-up, `observe.Observe` (copies `database.db` out of the running container and reads it, counting rows), lock | %s | %s |", sec(before), share(before, wall))
		p("| \"stopping …\" → \"… started again\": `ContainerStop`, `executor.TakeBackup`, `ContainerStart` (the container is down) | %s | %s |", sec(down), share(down, wall))
		p("| \"… started again\" → exit: result line, exit | %s | %s |", sec(after), share(after, wall))
		p("")
	}
	if len(bk.phases) > 0 {
		total := medianDur(bk.inProc)
		p("#### `executor.TakeBackup`, where the time goes (wall-clock stack samples every %v; medians of %d runs)", samplePeriod, len(bk.phases))
		p("")
		p("| Phase (function on the stack of the goroutine running `TakeBackup`) | Median | Share (of the median %s) | MiB/s of `database.db` |", sec(total))
		p("|---|---:|---:|---:|")
		var sum time.Duration
		for _, ph := range phaseOrder(bk) {
			d := phaseMedian(bk, ph)
			sum += d
			rate := "—"
			if dataPhases[ph] && d >= 20*time.Millisecond {
				rate = fmt.Sprintf("%.0f", mibps(bk.dbBytes, d))
			}
			p("| %s | %s | %s | %s |", ph, sec(d), share(d, total), rate)
		}
		p("| sum of the phase medians | %s | %s | |", sec(sum), share(sum, total))
		p("")
	}
	return w.String()
}

// phaseOrder is backupPhases' order, limited to phases that were seen.
func phaseOrder(bk *backupResults) []string {
	var out []string
	for _, ph := range backupPhases {
		for _, m := range bk.phases {
			if m[ph.name] > 0 {
				out = append(out, ph.name)
				break
			}
		}
	}
	return out
}

func phaseMedian(bk *backupResults, name string) time.Duration {
	var xs []time.Duration
	for _, m := range bk.phases {
		xs = append(xs, m[name])
	}
	return medianDur(xs)
}

// backupSummary says where the backup's time goes, in a few lines.
func backupSummary(bk *backupResults) string {
	if bk == nil || bk.skipped != "" || len(bk.raw) == 0 || bk.cli.n() == 0 || len(bk.phases) == 0 {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	raw, cli, down := medianDur(bk.raw), bk.cli.median(), medianDur(bk.cliDown)
	p("- **Backup of %.2f GiB**: the raw copy moves `database.db` at %.0f MiB/s (%s); `gpustack-deploy backup` takes %.1f× as long (%s, %.0f MiB/s),",
		float64(bk.dbBytes)/(1<<30), mibps(bk.dbBytes, raw), sec(raw), float64(cli)/float64(raw), sec(cli), mibps(bk.dbBytes, cli))
	p("  and the container is stopped for %s of it (%.1f× the raw copy). Before stopping, `observe` copies the whole database out once more", sec(down), float64(down)/float64(raw))
	p("  and counts its rows: %s, not downtime but wall time.", sec(medianDur(bk.cliBefore)))
	type ph struct {
		name string
		d    time.Duration
	}
	var phs []ph
	for _, name := range phaseOrder(bk) {
		phs = append(phs, ph{name, phaseMedian(bk, name)})
	}
	slices.SortFunc(phs, func(a, b ph) int { return int(b.d - a.d) })
	total := medianDur(bk.inProc)
	var top []string
	for i, x := range phs {
		if i == 4 {
			break
		}
		top = append(top, fmt.Sprintf("%s %s (%s)", strings.SplitN(x.name, ":", 2)[0], sec(x.d), share(x.d, total)))
	}
	p("  Inside `executor.TakeBackup` (%s in process), the largest phases: %s.", sec(total), strings.Join(top, "; "))
	p("  Each pass reads or writes the whole file: the copy out (written, not synced), the fold with the online backup API (read, write")
	p("  and `fsync`), `integrity_check` (read), `count(*)` of every table, the sha256 (read), then removing the raw copy. Only the copy needs")
	p("  the container stopped: `BackupNow` (executor/restore.go) starts it again right after the copy (`CopyRaw`), and the fold, the")
	p("  checks and the hashing (`StoreRaw`) run while GPUStack serves. Before an upgrade the whole backup still runs with it stopped:")
	p("  the backup must be the database the migration starts from.")
	return w.String()
}

// downtimeTable is the downtime section's table.
func downtimeTable(dt *downtimeResults) string {
	if dt == nil || len(dt.rows) == 0 {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("### Downtime of an upgrade %s → %s as a client sees it (`GET /healthz` every %v; fresh deployment per run, methods alternating)", fromTag, toTag, downtimePoll)
	p("")
	p("| New server's start-up | Method | Runs | Median downtime | p90 | Min | Max | Ratio to unguarded (medians) | Outage began after (median) | Operation wall (median) |")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	names := [numDt]string{
		"unguarded: stop, remove, create, start (Engine API)",
		"guarded: `gpustack-deploy apply --auto-approve`, default backup policy",
	}
	for _, row := range dt.rows {
		base := medianDur(row.down[dtUnguarded])
		for m := range numDt {
			s := statsOf(row.down[m])
			ratio := "—"
			if base > 0 {
				ratio = fmt.Sprintf("%.2f×", float64(s.median)/float64(base))
			}
			p("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |", delayName(row.delay), names[m], len(row.down[m]),
				sec(s.median), sec(s.p90), sec(s.min), sec(s.max), ratio, sec(medianDur(row.lead[m])), sec(medianDur(row.walls[m])))
		}
	}
	p("")
	var windows []int
	var gaps []time.Duration
	var rows []int64
	timeouts, held := [numDt]int{}, 0
	var slowest []time.Duration
	for _, row := range dt.rows {
		for m := range numDt {
			slowest = append(slowest, row.slowestOK[m]...)
			windows = append(windows, row.windows[m]...)
			gaps = append(gaps, row.gap[m]...)
			for _, n := range row.timeouts[m] {
				timeouts[m] += n
			}
			for _, n := range row.held[m] {
				held += n
			}
		}
		rows = append(rows, row.backupRows...)
	}
	if len(windows) > 0 {
		p("%s; an outage runs from the first failed poll to the first 200 received after it. The largest gap between two poll sends inside an outage was %s.",
			windowsText(windows), sec(slices.Max(gaps)))
		p("Polls that hung until the %v timeout (counted as failed at their send time): %d in the unguarded runs, %d in the guarded runs.",
			downtimeProbeTimeout, timeouts[dtUnguarded], timeouts[dtGuarded])
		if held == 0 {
			p("The slowest 200 after an operation started took %s: no request was held and answered late.", sec(slices.Max(slowest)))
		} else {
			polls := fmt.Sprintf("%d polls were", held)
			if held == 1 {
				polls = "1 poll was"
			}
			p("%s held longer than %v and then answered 200 (the slowest after %s): a client that sent a request during the outage may get",
				polls, heldAfter, sec(slices.Max(slowest)))
			p("an answer late; the outage ends when the first 200 is received, whenever its request was sent.")
		}
	}
	if len(rows) > 0 {
		p("The guarded runs' backups held %d to %d rows (seeded with `%s`).", slices.Min(rows), slices.Max(rows), strings.Join(seedArgs, " "))
	}
	p("")
	return w.String()
}

func windowsText(ws []int) string {
	lo, hi := slices.Min(ws), slices.Max(ws)
	if lo == 1 && hi == 1 {
		return "Every run had exactly one outage"
	}
	more := 0
	for _, w := range ws {
		if w > 1 {
			more++
		}
	}
	return fmt.Sprintf("%d of %d runs had more than one outage, up to %d: the downtime is the first one's", more, len(ws), hi)
}

// downtimeSummary puts the rows side by side in a few lines.
func downtimeSummary(dt *downtimeResults) string {
	if dt == nil || len(dt.rows) == 0 {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	for i, row := range dt.rows {
		u, g := medianDur(row.down[dtUnguarded]), medianDur(row.down[dtGuarded])
		if u == 0 || g == 0 {
			continue
		}
		lead := i == 0
		if lead {
			p("- **Downtime**: a client polling `/healthz` sees the guarded upgrade down for %s against %s unguarded with the emulator's own", sec(g), sec(u))
			p("  start-up (%.2f×, +%s: the backup's copies through `docker-tar` and the tool's stop → start path).", float64(g)/float64(u), sec(g-u))
		} else {
			p("  With %s on both sides, as a stand-in for a real GPUStack server, which takes seconds to start, it is %s against %s",
				delayName(row.delay), sec(g), sec(u))
			p("  (%.2f×, +%s): the same fixed cost on a longer start-up. Both rows are measured; neither replaces the other.", float64(g)/float64(u), sec(g-u))
		}
	}
	return w.String()
}

// ranSections names the sections this run measured.
func ranSections(b *bench) []string {
	var out []string
	for _, s := range allSections {
		if b.o.has(s) {
			out = append(out, s)
		}
	}
	return out
}

// backupMethod is the method bullet of the backup section.
func backupMethod(p func(string, ...any), b *bench) {
	p("- **Backup throughput**: one deployment at %s is applied, stopped, and its `database.db` copied out (`CopyFromContainer`); the", toTag)
	p("  bench adds a table `%s(id INTEGER PRIMARY KEY, blob BLOB)` with `github.com/mattn/go-sqlite3`, %d random bytes a row", payloadTable, b.o.backupBlob)
	p("  (ChaCha8), until the file holds %d MiB, checks that the revision is still the v0.5.1 head, copies it back (`CopyToContainer`, same", b.o.backupMiB)
	p("  owner and mode), starts the container and waits for `/healthz` (none of it timed). Then %d rounds of three methods in rotating", b.o.backupRuns)
	p("  order: the **raw copy** stops the container (timed apart), copies `%s` out with one `CopyFromContainer` into a local", dbPath)
	p("  file and `fsync`s it (timed), starts the container (timed apart); **`gpustack-deploy backup -f`** is timed as a process like the")
	p("  others, and split at the times its progress lines reach the bench (\"stopping … for a consistent backup\", \"… started again\");")
	p("  **`executor.TakeBackup`** is called in process on the stopped container with a `FileReader` that times each `CopyFile`, while a")
	p("  wall-clock stack sampler takes `runtime.Stack` of all goroutines every %v and charges the time since the previous sample to the", samplePeriod)
	p("  function the goroutine running `TakeBackup` is in (it counts waiting on I/O, `fsync` and the engine, which a CPU profile would")
	p("  not; its resolution is the period). Every backup is checked (verified, the revision, the payload's row count) and removed before")
	p("  the next run; the deployment is removed at the end. The section is skipped, saying so, when a directory it writes to (the")
	p("  temporary directory, `os.TempDir()`, the engine's root) has less than %d GiB free. The 1 GiB file stays in the page cache", minFreeBackup>>30)
	p("  (%s of memory), so every method reads it from memory: the figures compare work, not disk reads; the writes and `fsync`s are real.", b.facts.memory)
}

// downtimeMethod is the method bullet of the downtime section.
func downtimeMethod(p func(string, ...any), b *bench) {
	p("- **Downtime**: each run gets a fresh deployment brought to %s by `apply` (not timed), whose database is seeded inside the container", fromTag)
	p("  (`%s`). A client then sends `GET /healthz` to the loopback port every %v, each on a new", strings.Join(seedArgs, " "), downtimePoll)
	p("  connection (%v timeout) in its own goroutine, so that a hung request does not hold up the next, and records when each was", downtimeProbeTimeout)
	p("  sent, how long it took and whether the answer was 200. The operation starts once three polls in a row were 200 and is followed")
	p("  until %d in a row are. **Downtime** is the time from sending the first poll after the operation started that failed to receiving", stableAfter)
	p("  the first 200 for a poll sent after it (a request held during the outage and answered later counts as up from its answer);")
	p("  the resolution is the poll period. **Guarded** is `gpustack-deploy apply --auto-approve --var")
	p("  version=%s` with the default backup policy (backup before upgrade, verified; the run checks it holds the seeded rows);", toVer)
	p("  **unguarded** is the upgrade section's stop / remove / create / start through the Engine API. The methods alternate, %d runs", b.o.downtimeRuns)
	if b.o.startupDelay > 0 {
		p("  each, twice: with the emulator's own start-up, and with `GPUSTACK_EMULATOR_STARTUP_DELAY=%s` in the new container of both", b.o.startupDelay)
		p("  methods (`--var startup_delay=%s`; the v0.4.1 container starts without it). The emulator answers within milliseconds of", b.o.startupDelay)
		p("  its start, a real GPUStack server takes seconds to start: the delay row is there for that")
		p("  reason, to see the same fixed cost against a realistic start-up, not to replace the first row.")
	} else {
		p("  each, with the emulator's own start-up.")
	}
}
