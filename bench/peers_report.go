package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// peersReproduce is the section's line in the Reproduce block.
const peersReproduce = "go run ./bench -only peers -update                # against docker-compose (apt-get install -y docker-compose)"

func (pr *peersResults) ran() bool {
	return pr != nil && pr.skipped == "" && pr.noop[noopCompose].n() > 0
}

// peersMethodText is the section's method bullet, "" when it did not run.
func peersMethodText(b *bench, pr *peersResults) string {
	if pr == nil {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("- **Peers** (docker-compose): one deployment at %s, its file the bench's usual one plus `%s = var.note` in `env`, and beside it", toTag, peerEnv)
	p("  one docker-compose project (`-p gsdbench-<run>-composeN`, a name unique to the run) whose file gives the same container as `spec.For`")
	p("  derives for the deployment: same image `%s:%s` (local, built by `emulator/image`; compose 1.29 has no `pull_policy`, it does", imageRepo, toTag)
	p("  not pull an image it has, and the bench never runs `docker-compose pull`), arguments, environment (`%s=${%s}` from compose's", peerEnv, peerEnv)
	p("  environment), two named volumes (`name:` set, as the deployment's), a port published on `127.0.0.1` only, restart policy, a %s stop", stopGrace)
	p("  grace and `network_mode: bridge` (the default bridge, as the deployment's container, so compose creates no network). Both are")
	p("  brought up first (not timed). Every process, `docker-compose` (Debian's package, Python) included, is started by `bench/launch` and")
	p("  timed the same way (wall time, its own CPU and `ru_maxrss`). Each measurement is 1 warm-up round, then %d rounds in which the", pr.runs)
	p("  methods run in rotating order. **No-op**: `plan --detailed-exitcode` (must exit 0), `apply --auto-approve` with nothing to do (must")
	p("  print \"No changes\") and `docker-compose up -d` (must leave the container as it is: same id before and after), with the engine as")
	p("  found and again with the plan section's %d unrelated containers (created, never started) and %d volumes added. **Config change**:", b.o.unrelated, b.o.unrelated)
	p("  each run sets `%s` of one side to a new value: `apply --auto-approve --var note=…` or `docker-compose up -d` with the new", peerEnv)
	p("  value in its environment, while the downtime section's client polls that side's `/healthz` on its loopback port every %v;", downtimePoll)
	p("  *until 200 again* runs from the process start to the first 200 received after the outage, *downtime* from the first failed poll")
	p("  to that 200. Every run is checked: the container was replaced (new id) and runs with the new value and `%s:%s`.", imageRepo, toTag)
	p("  The section is skipped, saying so, when `%s` is not installed. It removes what compose created (`down -v`, then by the", composeBinary)
	p("  project's label: containers, volumes, networks) at its end, also after a failure. The upgrade, downtime and backup figures it")
	p("  sets against their unguarded peers are not measured again: they are read from the tables of this report.")
	return w.String()
}

// peersTable is the section's results; ref is the report text the
// upgrade, downtime and backup figures are read from.
func peersTable(pr *peersResults, ref string) string {
	if pr == nil {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	if pr.skipped != "" {
		p("### Against peers (docker-compose)")
		p("")
		p("**Skipped**: %s.", pr.skipped)
		p("")
		return w.String()
	}
	if !pr.ran() {
		return ""
	}
	p("### Against peers: gpustack-deploy and docker-compose %s on the same engine, in the same run (%d runs each, methods alternating)", pr.composeVersion, pr.runs)
	p("")
	p("`/proc/loadavg` at the start of the section: `%s`; at its end: `%s`. The machine's CPUs were shared with other work while", pr.loadStart, pr.loadEnd)
	p("it ran: compare the medians; p90 shows the noise.")
	p("")
	p("#### No-op: nothing changed")
	p("")
	p("| Command | Engine | Runs | Median | p90 | Min | CPU (median) | Max RSS | Median ÷ `docker-compose up -d` (same engine) |")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|")
	row := func(name, engine string, s series, base time.Duration) {
		rt := ""
		if base > 0 {
			rt = fmt.Sprintf("%.2f×", float64(s.median())/float64(base))
		}
		p("| %s | %s | %d | %s | %s | %s | %s | %s | %s |", name, engine, s.n(), ms(s.median()), ms(s.p90()), ms(s.min()), cpuMs(s), mib(s.maxRSS()), rt)
	}
	row("`gpustack-deploy version`: process start and exit only", "—", pr.versionGSD, 0)
	row("`docker-compose version --short`: process start and exit only (Python start-up, imports)", "—", pr.versionCompose, 0)
	engines := []struct {
		s    *[numNoop]series
		name string
	}{
		{&pr.noop, fmt.Sprintf("as found: %d containers, %d volumes", pr.plain.containers, pr.plain.volumes)},
		{&pr.noopLoaded, fmt.Sprintf("+ %d unrelated containers and %d volumes: %d / %d", pr.unrelated, pr.unrelated, pr.loaded.containers, pr.loaded.volumes)},
	}
	for _, e := range engines {
		if e.s[noopCompose].n() == 0 {
			continue
		}
		base := e.s[noopCompose].median()
		row("`gpustack-deploy plan --detailed-exitcode` (exit 0)", e.name, e.s[noopPlan], base)
		row("`gpustack-deploy apply --auto-approve`, nothing to do", e.name, e.s[noopApply], base)
		row("`docker-compose up -d`, nothing changed (\"… is up-to-date\")", e.name, e.s[noopCompose], base)
	}
	p("")
	p("The engine counts include this section's deployment and compose project (2 containers, 4 volumes) and other work's. `plan` and")
	p("`apply` read the container's database (one copy out of it) to tell a no-op from a pending migration; `docker-compose up -d` compares")
	p("its config-hash label and the image id with the file.")
	p("")
	p("#### Config change: one environment variable (`%s`), container recreated", peerEnv)
	p("")
	p("| Method | Runs | Process median | p90 | `/healthz` 200 again, median | p90 | Client downtime, median | p90 | Outage began after (median) | CPU (median) | Max RSS |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	names := [numRec]string{
		"`gpustack-deploy apply --auto-approve --var note=…`",
		"`docker-compose up -d` (new value in its environment)",
	}
	for m := range numRec {
		s, h, d := pr.recreate[m], statsOf(pr.recHealthy[m]), statsOf(pr.recDown[m])
		var lead []time.Duration
		for i := range pr.recHealthy[m] {
			lead = append(lead, pr.recHealthy[m][i]-pr.recDown[m][i])
		}
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |", names[m], s.n(), sec(s.median()), sec(s.p90()), sec(h.median), sec(h.p90), sec(d.median), sec(d.p90),
			sec(medianDur(lead)), cpuMs(s), mib(s.maxRSS()))
	}
	p("")
	p("*`/healthz` 200 again*: from the process start to the first 200 received after the outage; *client downtime*: first failed poll → that 200")
	p("(`GET /healthz` every %v on the side's loopback port); *outage began after*: process start → first failed poll. %s.", downtimePoll, windowsText(slices.Concat(pr.recWindows[:]...)))
	if held := heldText(pr); held != "" {
		p("%s", held)
	}
	p("")
	p("- `gpustack-deploy apply` observes (inspects, copies the database out and reads its revision and schema), plans a replacement because")
	p("  the container's configuration changed, and takes **no backup** because the image does not change (the deployment's backup store held")
	p("  %d backups after the %d changes; the policy backs up before an image change or a migration). It stops the container, keeps it aside", pr.backups, pr.recreate[recGSD].n()+1)
	p("  (renamed), creates and starts the new one, follows its log, waits for `/healthz`, checks `/version`, the stamped revision and the")
	p("  schema probe, then sets the restart policy and removes the old container; it returns only after that, and would have rolled back")
	p("  on a failure. Its process ended after `/healthz` answered again in %d of %d runs.", afterCount(pr, recGSD), pr.recreate[recGSD].n())
	p("- `docker-compose up -d` sees the config hash differ, stops the container, renames it, creates and starts the new one, removes the old")
	p("  one, and returns as soon as the new container is started: it does not wait for `/healthz` (the file has no `healthcheck`, and")
	p("  compose 1.29's `up` waits for none anyway) and cannot roll back. `/healthz` answered again only after its process had exited in")
	p("  %d of %d runs; in the others the emulator, which starts in milliseconds, answered before compose had removed the old container",
		pr.recreate[recCompose].n()-afterCount(pr, recCompose), pr.recreate[recCompose].n())
	p("  and exited.")
	p("")
	p("#### Image change, downtime and backup against their unguarded peers (not measured again; from this report's tables)")
	p("")
	p("`docker-compose up -d` after an image change does what the *unguarded* method does (stop, remove or rename, create, start), minus")
	p("the wait for `/healthz`; compose has no backup, so the raw copy of `database.db` stands for a backup by hand.")
	p("")
	p("| Comparison | gpustack-deploy (median) | Unguarded peer (median) | Ratio | From the table |")
	p("|---|---:|---:|---:|---|")
	refRow := func(what, table string, tool, peer []string, toolCell, peerCell int, toolName, peerName string) {
		if tool == nil || peer == nil || len(tool) <= toolCell || len(peer) <= peerCell {
			p("| %s | — | — | — | *%s*: not in this report (run it: see *Reproduce*) |", what, table)
			return
		}
		a, b := tool[toolCell], peer[peerCell]
		rt := "—"
		if x, y := parseFig(a), parseFig(b); x > 0 && y > 0 {
			rt = fmt.Sprintf("%.2f×", float64(x)/float64(y))
		}
		p("| %s | %s: %s | %s: %s | %s | *%s* |", what, toolName, a, peerName, b, rt, table)
	}
	up := "Upgrade " + fromTag + " → " + toTag
	refRow(up+", time to done", up, refLine(ref, "| `gpustack-deploy apply`, default backup policy"), refLine(ref, "| unguarded: stop, remove, create, start through the Engine API"), 2, 2,
		"`apply`, backup before upgrade, verified", "stop, remove, create, start, until `/healthz` 200")
	refRow(up+", time to done, no backup", up, refLine(ref, "| `gpustack-deploy apply`, `backup { before_upgrade = false }`"), refLine(ref, "| unguarded: stop, remove, create, start through the Engine API"), 2, 2,
		"`apply`, `before_upgrade = false`", "the same unguarded replacement")
	refRow("Downtime of that upgrade as a client sees it (emulator's own start-up)", "Downtime", refLine(ref, "| emulator's own start-up | guarded"), refLine(ref, "| emulator's own start-up | unguarded"), 3, 3,
		"guarded, with backup", "unguarded")
	delayG, delayU := refLineWith(ref, "| GPUSTACK_EMULATOR_STARTUP_DELAY=", "| guarded"), refLineWith(ref, "| GPUSTACK_EMULATOR_STARTUP_DELAY=", "| unguarded")
	if delayG != nil {
		refRow("… with "+delayG[0]+" (a realistic start-up)", "Downtime", delayG, delayU, 3, 3, "guarded, with backup", "unguarded")
	}
	refRow("Backup of the 1 GiB database", "Backup", refLine(ref, "| `gpustack-deploy backup -f …`"), refLine(ref, "| raw copy: `CopyFromContainer`"), 2, 2,
		"`gpustack-deploy backup` (verified)", "raw copy, container stopped")
	p("")
	return w.String()
}

// refLine is the cells of the first table line of doc that starts with
// prefix, nil when there is none.
func refLine(doc, prefix string) []string {
	return refLineWith(doc, prefix, "")
}

// refLineWith is refLine for the first line that also contains also.
func refLineWith(doc, prefix, also string) []string {
	for line := range strings.SplitSeq(doc, "\n") {
		if !strings.HasPrefix(line, prefix) || !strings.Contains(line, also) {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), " | ")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		return cells
	}
	return nil
}

// parseFig reads a duration as the report writes it ("414.6 ms",
// "1.17 s"), 0 when it is not one.
func parseFig(s string) time.Duration {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return 0
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0
	}
	switch unit {
	case "ms":
		return time.Duration(f * float64(time.Millisecond))
	case "s":
		return time.Duration(f * float64(time.Second))
	}
	return 0
}

// peersSummary is the section's bullet in "Where the time goes".
func peersSummary(pr *peersResults) string {
	if !pr.ran() || pr.recreate[recCompose].n() == 0 {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	n := pr.noop
	p("- **Against docker-compose %s** (load average `%s` → `%s`): with nothing changed, `docker-compose up -d` takes %s, `plan` %s and",
		pr.composeVersion, load3(pr.loadStart), load3(pr.loadEnd), ms(n[noopCompose].median()), ms(n[noopPlan].median()))
	p("  `apply` %s. `docker-compose version --short`, which only starts Python and exits, takes %s (min %s), `gpustack-deploy version` %s:",
		ms(n[noopApply].median()), ms(pr.versionCompose.median()), ms(pr.versionCompose.min()), ms(pr.versionGSD.median()))
	p("  compose's no-op is mostly its start-up, gpustack-deploy's mostly the copy of the database out of the container.")
	if l := pr.noopLoaded; l[noopCompose].n() > 0 {
		p("  With %d unrelated containers and volumes added: %s, %s and %s.", pr.unrelated, ms(l[noopCompose].median()), ms(l[noopPlan].median()), ms(l[noopApply].median()))
	}
	g, c := pr.recreate[recGSD], pr.recreate[recCompose]
	hg, hc := medianDur(pr.recHealthy[recGSD]), medianDur(pr.recHealthy[recCompose])
	p("  Changing one environment variable: compose returns after %s and `/healthz` answers again %s after its start; `apply` returns", sec(c.median()), sec(hc))
	p("  after %s, having verified the new container, and `/healthz` answered again after %s (client downtime %s against %s; on this",
		sec(g.median()), sec(hg), sec(medianDur(pr.recDown[recGSD])), sec(medianDur(pr.recDown[recCompose])))
	p("  engine the downtime of both falls into two groups, with and without a request held about a second: see the table's note).")
	return w.String()
}

// peersParts are the section's marked parts, for -update. A skipped run
// (no docker-compose) has none: the report keeps its earlier figures.
func peersParts(b *bench, r *results, doc string) []part {
	if r.peers == nil || r.peers.skipped != "" {
		stage("peers: skipped, so the report keeps its earlier peers figures")
		return nil
	}
	return []part{
		{placeNote, mergeNote(b, r, doc, "peers", "*peers* (docker-compose)")},
		{placeMethod, peersMethodText(b, r.peers)},
		{placeResults, peersTable(r.peers, doc)},
		{placeSummary, peersSummary(r.peers)},
	}
}

// load3 is the 1, 5 and 15 minute averages of a /proc/loadavg line.
func load3(line string) string {
	f := strings.Fields(line)
	return strings.Join(f[:min(3, len(f))], " ")
}

// heldText says in how many recreate runs of each side the client had a
// request held and answered 200 late, and the median downtime of those
// runs and of the others; "" when it never happened.
func heldText(pr *peersResults) string {
	var parts []string
	var slowest time.Duration
	seen := false
	for m := range numRec {
		var with, without []time.Duration
		for i, h := range pr.recHeld[m] {
			if h > 0 {
				slowest = max(slowest, pr.recSlowOK[m][i])
				with = append(with, pr.recDown[m][i])
			} else {
				without = append(without, pr.recDown[m][i])
			}
		}
		seen = seen || len(with) > 0
		part := fmt.Sprintf("%s in %d of %d runs (median downtime %s in those", recKinds[m], len(with), len(pr.recHeld[m]), sec(medianDur(with)))
		if len(without) > 0 {
			part += fmt.Sprintf(", %s in the others", sec(medianDur(without)))
		}
		parts = append(parts, part+")")
	}
	if !seen {
		return ""
	}
	return fmt.Sprintf("The client had a request held and answered 200 more than %v after it was sent (the slowest after %s):\n%s.\n"+
		"The outage lasts until the first 200 arrives, so the downtime of both sides falls into two groups, and a median of %d runs\n"+
		"can land in either: compare within a group.", heldAfter, sec(slowest), strings.Join(parts, "; "), pr.runs)
}

// afterCount is in how many recreate runs of method m the process ended
// after /healthz answered 200 again.
func afterCount(pr *peersResults, m int) int {
	n := 0
	for i, w := range pr.recreate[m].walls {
		if i < len(pr.recHealthy[m]) && w >= pr.recHealthy[m][i] {
			n++
		}
	}
	return n
}
