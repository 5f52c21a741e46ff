package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
)

// Upgrade methods, measured alternately.
const (
	methodBaseline = iota // unguarded stop/remove/create/start, /healthz only
	methodNoBackup        // gpustack-deploy apply, backup.before_upgrade = false
	methodBackup          // gpustack-deploy apply, default backup policy
	numMethods
)

var methodKinds = [numMethods]string{"base", "nobk", "bk"}

// results is everything the report shows.
type results struct {
	started, finished time.Time

	// process reference points
	version, validate series
	// no-op plan
	plan, planLoaded, planAfter series
	unrelated                   int // containers and volumes added for planLoaded
	// /proc/loadavg when the measuring started and ended
	loadStart, loadEnd string
	phases             phases
	enginePlain        engineCounts
	engineLoaded       engineCounts
	// upgrades
	upgrade   [numMethods]series
	baseSteps []baselineSteps
	// extra runs through the tracing proxy, by label: "plan",
	// "plan-loaded", and the upgrade methods' kinds
	traces map[string][]tracedRun
	// profile, when taken
	profileTop string
	// go test -bench output
	goBench string
	// backup throughput (nil: not run)
	backup *backupResults
	// downtime of upgrades as a client sees it (nil: not run)
	downtime *downtimeResults
	// cache split against a raw copy (nil: not run)
	split *splitResults
	// against docker-compose (nil: not run)
	peers *peersResults
	// v2 database backup and restore
	v2 *v2Results
}

type engineCounts struct{ containers, volumes int }

func (b *bench) counts(ctx context.Context) engineCounts {
	var c engineCounts
	if list, err := b.cli.ContainerList(ctx, container.ListOptions{All: true}); err == nil {
		c.containers = len(list)
	}
	if vl, err := b.cli.VolumeList(ctx, volume.ListOptions{}); err == nil {
		c.volumes = len(vl.Volumes)
	}
	return c
}

func (b *bench) run(ctx context.Context) error {
	r := &results{started: time.Now(), traces: map[string][]tracedRun{}, loadStart: loadavg()}
	var tr *tracer
	if b.sock != "" && (b.o.has("plan") || b.o.has("upgrade")) {
		var err error
		if tr, err = startTracer(b.tmp, b.sock); err != nil {
			return fmt.Errorf("tracing proxy: %w", err)
		}
		defer tr.close()
	}

	if b.o.has("plan") {
		if err := b.planSection(ctx, r, tr); err != nil {
			return err
		}
	}
	if b.o.has("upgrade") {
		if err := b.upgradeSection(ctx, r, tr); err != nil {
			return err
		}
	}

	// --- profile when a target is missed --------------------------------
	if b.o.has("plan") && (b.o.profile || missed(r)) {
		stage("CPU-profiling %d in-process no-op plans", b.o.runs)
		d, err := b.newDeployment("prof", toVer, false)
		if err != nil {
			return err
		}
		if err := b.setup(ctx, d); err != nil {
			return err
		}
		_, top, err := b.profilePlan(ctx, d, max(b.o.runs, 30))
		if err != nil {
			return err
		}
		r.profileTop = top
		if err := b.teardown(ctx, d); err != nil {
			return err
		}
	}
	if b.o.has("backup") {
		var err error
		if r.backup, err = b.backupSection(ctx); err != nil {
			return err
		}
	}
	if b.o.has("downtime") {
		var err error
		if r.downtime, err = b.downtimeSection(ctx); err != nil {
			return err
		}
	}
	if b.o.has("split") {
		var err error
		if r.split, err = b.splitSection(ctx); err != nil {
			return err
		}
	}
	if b.o.has(v2Section) {
		var err error
		if r.v2, err = b.v2backupSection(ctx); err != nil {
			return err
		}
	}
	if b.o.has("peers") {
		var err error
		if r.peers, err = b.peersSection(ctx); err != nil {
			return err
		}
	}
	r.finished = time.Now()
	r.loadEnd = loadavg()

	if b.o.has("gobench") {
		stage("go test -run '^$' -bench . -benchmem ./bench")
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1", "./bench")
		cmd.Dir = b.root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go test -bench ./bench: %w\n%s", err, out)
		}
		r.goBench = string(out)
	}

	report := renderReport(b, r)
	fmt.Print(report.stdout)
	if b.o.out != "" {
		out := b.o.out
		if !filepath.IsAbs(out) {
			out = filepath.Join(b.root, out)
		}
		text := report.markdown
		if b.o.update {
			old, err := os.ReadFile(out)
			if err != nil {
				return fmt.Errorf("-update: %w", err)
			}
			if text, err = b.merged(r, string(old)); err != nil {
				return fmt.Errorf("-update %s: %w", out, err)
			}
		}
		if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
			return err
		}
		stage("wrote %s", out)
	}
	return nil
}

// planSection measures the reference points and the no-op plans.
func (b *bench) planSection(ctx context.Context, r *results, tr *tracer) error {
	// --- no-op plan ---------------------------------------------------
	stage("no-op plan: setting up one deployment at %s", toTag)
	noop, err := b.newDeployment("noop", toVer, false)
	if err != nil {
		return err
	}
	if err := b.setup(ctx, noop); err != nil {
		return err
	}
	stage("reference points: `version` (process only) and `validate` (config, no Docker), %d runs each", b.o.runs)
	if r.version, err = b.measure(ctx, noop, 0, []string{"version"}, 0); err != nil {
		return err
	}
	if r.validate, err = b.measure(ctx, noop, 0, []string{"validate"}, 0); err != nil {
		return err
	}
	r.enginePlain = b.counts(ctx)
	stage("no-op plan: %d warm-up + %d timed runs (engine: %d containers, %d volumes)", b.o.warmup, b.o.runs, r.enginePlain.containers, r.enginePlain.volumes)
	planArgs := []string{"plan", "--detailed-exitcode"}
	if r.plan, err = b.measure(ctx, noop, b.o.warmup, planArgs, 0); err != nil {
		return err
	}
	if r.phases, err = b.planPhases(ctx, noop, b.o.runs); err != nil {
		return err
	}
	if tr != nil {
		if err := b.traced(ctx, tr, r, "plan", noop, planArgs); err != nil {
			return err
		}
	}

	if b.o.unrelated > 0 {
		stage("creating %d unrelated containers (not started) and %d unrelated volumes", b.o.unrelated, b.o.unrelated)
		if err := b.createUnrelated(ctx, b.o.unrelated); err != nil {
			return err
		}
		r.engineLoaded = b.counts(ctx)
		r.unrelated = b.o.unrelated
		stage("loaded no-op plan: %d warm-up + %d timed runs (engine: %d containers, %d volumes)", b.o.warmup, b.o.runs, r.engineLoaded.containers, r.engineLoaded.volumes)
		if r.planLoaded, err = b.measure(ctx, noop, b.o.warmup, planArgs, 0); err != nil {
			return err
		}
		if tr != nil {
			if err := b.traced(ctx, tr, r, "plan-loaded", noop, planArgs); err != nil {
				return err
			}
		}
		stage("removing the unrelated containers and volumes")
		if err := b.removeUnrelated(ctx); err != nil {
			return err
		}
		// The engine as found again: what changed between the two plain
		// series is noise, not the unrelated objects.
		stage("no-op plan again without them: %d warm-up + %d timed runs", b.o.warmup, b.o.runs)
		if r.planAfter, err = b.measure(ctx, noop, b.o.warmup, planArgs, 0); err != nil {
			return err
		}
	}
	return b.teardown(ctx, noop)
}

// upgradeSection times the three upgrade methods and traces the tool's.
func (b *bench) upgradeSection(ctx context.Context, r *results, tr *tracer) error {
	// --- upgrades -----------------------------------------------------
	stage("upgrade %s -> %s: %d rounds of 3 methods, alternating, each on a fresh deployment", fromTag, toTag, b.o.upgradeRuns)
	for i := range b.o.upgradeRuns {
		var line []string
		for k := range numMethods {
			m := (i + k) % numMethods
			wall, err := b.upgradeOnce(ctx, r, m)
			if err != nil {
				return err
			}
			line = append(line, fmt.Sprintf("%s %v", methodKinds[m], wall.Round(time.Millisecond)))
		}
		stage("  round %d/%d: %s", i+1, b.o.upgradeRuns, strings.Join(line, ", "))
	}
	if tr != nil {
		stage("traced upgrades: %d of each apply method (not in the table's figures)", tracedUpgrades)
		for range tracedUpgrades {
			for _, m := range []int{methodNoBackup, methodBackup} {
				d, err := b.newDeployment(methodKinds[m], fromVer, m == methodBackup)
				if err != nil {
					return err
				}
				if err := b.setup(ctx, d); err != nil {
					return err
				}
				if err := b.traced(ctx, tr, r, methodKinds[m], d, upgradeArgs); err != nil {
					return err
				}
				if err := b.teardown(ctx, d); err != nil {
					return err
				}
			}
		}
	}

	return nil
}

var upgradeArgs = []string{"apply", "--auto-approve", "--var", "version=" + toVer}

// measure runs the binary warmup times untimed, then runs times timed,
// requiring exit code want from each.
func (b *bench) measure(ctx context.Context, d *deployment, warmup int, args []string, want int) (series, error) {
	var s series
	for i := range warmup + b.o.runs {
		x, err := b.tool(ctx, d, nil, args...)
		if err != nil {
			return s, err
		}
		if x.exit != want {
			return s, fmt.Errorf("%s %s: exit %d, want %d\n%s", filepath.Base(b.bin), strings.Join(args, " "), x.exit, want, x.output())
		}
		if i >= warmup {
			s.add(x)
		}
	}
	return s, nil
}

// tracedUpgrades is how many upgrades of each apply method are traced.
const tracedUpgrades = 5

// tracedRun is one run of the binary through the tracing proxy.
type tracedRun struct {
	calls []call
	wall  time.Duration
}

// traced runs the binary once through the tracing proxy; it must exit 0.
func (b *bench) traced(ctx context.Context, tr *tracer, r *results, label string, d *deployment, args []string) error {
	tr.begin()
	x, err := b.tool(ctx, d, nil, append(append([]string(nil), args...), "--docker-host", tr.host())...)
	calls := tr.end()
	if err != nil {
		return err
	}
	if x.exit != 0 {
		return fmt.Errorf("traced %s: exit %d\n%s", label, x.exit, x.output())
	}
	r.traces[label] = append(r.traces[label], tracedRun{calls: calls, wall: x.wall})
	return nil
}

// upgradeOnce brings a fresh deployment to v0.4.1 (not timed), upgrades it
// to v0.5.1 with method m (timed), checks the result and removes it.
func (b *bench) upgradeOnce(ctx context.Context, r *results, m int) (time.Duration, error) {
	d, err := b.newDeployment(methodKinds[m], fromVer, m == methodBackup)
	if err != nil {
		return 0, err
	}
	if err := b.setup(ctx, d); err != nil {
		return 0, err
	}
	var wall time.Duration
	switch m {
	case methodBaseline:
		u, err := b.unguardedSpec(d, map[string]string{"version": toVer})
		if err != nil {
			return 0, err
		}
		w, steps, err := baselineUpgrade(ctx, u)
		if err != nil {
			return 0, fmt.Errorf("baseline upgrade of %s: %w", d.name, err)
		}
		wall = w
		r.upgrade[m].walls = append(r.upgrade[m].walls, w)
		r.baseSteps = append(r.baseSteps, steps)
	default:
		x, err := b.tool(ctx, d, nil, upgradeArgs...)
		if err != nil {
			return 0, err
		}
		if x.exit != 0 {
			return 0, fmt.Errorf("upgrade of %s (%s): apply exited %d\n%s", d.name, methodKinds[m], x.exit, x.output())
		}
		wall = x.wall
		r.upgrade[m].add(x)
		if err := b.checkBackups(d, m == methodBackup); err != nil {
			return 0, err
		}
	}
	img, err := b.runningImage(ctx, d.name)
	if err != nil {
		return 0, err
	}
	if img != imageRepo+":"+toTag {
		return 0, fmt.Errorf("after the %s upgrade, %s runs %q, want %s:%s", methodKinds[m], d.name, img, imageRepo, toTag)
	}
	return wall, b.teardown(ctx, d)
}

// checkBackups makes sure the method measured what it claims: one verified
// backup with the default policy, none without.
func (b *bench) checkBackups(d *deployment, want bool) error {
	st, err := backup.Open(filepath.Join(d.dir, "backups"), d.name)
	if err != nil {
		return err
	}
	list, err := st.List()
	if err != nil {
		return err
	}
	if want && len(list) != 1 || !want && len(list) != 0 {
		return fmt.Errorf("%s: %d backups after the upgrade, want %d", d.name, len(list), map[bool]int{true: 1}[want])
	}
	return nil
}

// loadavg is the first three fields of /proc/loadavg, or "unknown".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// merged is the report doc with the parts of the sections this run
// measured replaced (see merge.go).
func (b *bench) merged(r *results, doc string) (string, error) {
	var err error
	if b.o.has("split") {
		parts := []part{
			{placeNote, mergeNote(b, r, doc, "split", "*cache split*")},
			{placeMethod, splitMethodText(b)},
			{placeResults, splitTable(r.split)},
			{placeSummary, splitSummary(r.split)},
			{placeBreakdown, splitBreakdown(r.split)},
		}
		if doc, err = mergeReport(doc, "split", parts, splitReproduce); err != nil {
			return "", err
		}
	}
	if b.o.has("peers") {
		if doc, err = mergeReport(doc, "peers", peersParts(b, r, doc), peersReproduce); err != nil {
			return "", err
		}
	}
	if b.o.has(v2Section) {
		parts := []part{
			{placeNote, mergeNote(b, r, doc, v2Section, "*v2 backup and restore*")},
			{placeMethod, v2MethodText(b)},
			{placeResults, v2Table(r.v2)},
		}
		if doc, err = mergeReport(doc, v2Section, parts, v2Reproduce); err != nil {
			return "", err
		}
	}
	return doc, nil
}
