package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
)

// The peers section sets gpustack-deploy against docker-compose (Debian's
// docker-compose 1.29.2, the Python one) on the same engine in the same
// run: a no-op (nothing changed) with the engine as found and with the
// unrelated containers and volumes of the plan section, and a one-variable
// configuration change that recreates the container, timed as a process
// and as a client polling /healthz sees it. Compose gets a file equivalent
// to the deployment's container as spec.For derives it: same image,
// arguments, environment, named volumes, loopback port, restart policy and
// network (the default bridge). It runs under a project name unique to the
// run; what it created is removed at the end, also after a failure.

// The section registers itself: it runs after split (before gobench), and
// -only peers -update merges its parts into an existing report.
func init() {
	at := slices.Index(allSections, "gobench")
	if at < 0 {
		at = len(allSections)
	}
	allSections = slices.Insert(allSections, at, "peers")
	mergeable = append(mergeable, "peers")
}

// peersRuns is the number of timed runs of each peers measurement.
var peersRuns = flag.Int("peers-runs", 15, "timed runs of each peers measurement (docker-compose against gpustack-deploy)")

// composeBinary is the peer: docker-compose v1 (Debian's package docker-compose).
const composeBinary = "docker-compose"

// peerEnv is the environment variable the configuration change changes.
const peerEnv = "GSDBENCH_NOTE"

// composeProjectLabel is the label docker-compose puts on what it creates.
const composeProjectLabel = "com.docker.compose.project"

// No-op methods, measured alternately.
const (
	noopPlan    = iota // gpustack-deploy plan --detailed-exitcode
	noopApply          // gpustack-deploy apply --auto-approve, nothing to do
	noopCompose        // docker-compose up -d, nothing changed
	numNoop
)

var noopKinds = [numNoop]string{"plan", "apply", "compose"}

// Recreate methods, measured alternately.
const (
	recGSD     = iota // gpustack-deploy apply --auto-approve --var note=…
	recCompose        // docker-compose up -d with GSDBENCH_NOTE=…
	numRec
)

var recKinds = [numRec]string{"gpustack-deploy", "compose"}

// peersResults are the peers figures (nil: not run).
type peersResults struct {
	skipped        string // why the section did not run ("" when it did)
	composeVersion string
	runs           int
	// /proc/loadavg (whole line) at the start and end of the section
	loadStart, loadEnd string
	// process start and exit only: gpustack-deploy version, docker-compose version --short
	versionGSD, versionCompose series
	// no-op, engine as found and loaded
	noop, noopLoaded      [numNoop]series
	plain, loaded         engineCounts
	unrelated             int
	recreate              [numRec]series
	recHealthy, recDown   [numRec][]time.Duration // op start → first 200 again; client outage
	recWindows            [numRec][]int
	recHeld               [numRec][]int           // 200s received more than heldAfter after their send
	recSlowOK             [numRec][]time.Duration // the longest 200 of each run
	backups               int                     // backups in the store after the gpustack-deploy recreates
	composeFile           string
	composeProjectExample string
}

// peerDeployment is one gpustack-deploy deployment with the note variable
// in its environment, and the docker-compose project set beside it.
type peerDeployment struct {
	*deployment
	note string // current value of GSDBENCH_NOTE

	project     string // docker-compose project name
	composeDir  string
	composeFile string
	cname       string // compose's container name
	cport       int    // compose's loopback port
	cnote       string // compose's current GSDBENCH_NOTE
}

// peersSection runs the peers measurements, or says why it cannot.
func (b *bench) peersSection(ctx context.Context) (res *peersResults, err error) {
	res = &peersResults{runs: *peersRuns, unrelated: b.o.unrelated}
	bin, lerr := exec.LookPath(composeBinary)
	if lerr != nil {
		res.skipped = fmt.Sprintf("`%s` is not installed (Debian: `apt-get install -y docker-compose`)", composeBinary)
		stage("peers: SKIPPED: %s not found in PATH (%v); install it with: apt-get install -y docker-compose", composeBinary, lerr)
		return res, nil
	}
	if *peersRuns < 1 {
		return nil, errors.New("-peers-runs must be at least 1")
	}
	out, verr := exec.CommandContext(ctx, bin, "version", "--short").Output()
	if verr != nil {
		return nil, fmt.Errorf("%s version --short: %w", bin, verr)
	}
	res.composeVersion = strings.TrimSpace(string(out))
	res.loadStart = loadavgLine()
	stage("peers: gpustack-deploy against docker-compose %s, %d runs each; /proc/loadavg at the start: %s", res.composeVersion, res.runs, res.loadStart)

	pd, err := b.newPeerDeployment()
	if err != nil {
		return nil, err
	}
	// Whatever happens, remove what compose and the deployment created,
	// with a context of its own: ctx may be the cancelled one.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if cerr := b.peersCleanup(cctx, bin, pd); cerr != nil {
			err = errors.Join(err, fmt.Errorf("peers cleanup: %w", cerr))
		}
	}()
	res.composeFile, err = pd.writeCompose(b)
	if err != nil {
		return nil, err
	}
	res.composeProjectExample = pd.project

	stage("peers: setting up the deployment %s and the compose project %s (not timed)", pd.name, pd.project)
	if err := b.setup(ctx, pd.deployment); err != nil {
		return nil, err
	}
	if x, err := b.compose(ctx, pd, "up", "-d"); err != nil {
		return nil, err
	} else if x.exit != 0 {
		return nil, fmt.Errorf("docker-compose up -d (first): exit %d\n%s", x.exit, x.output())
	}
	for _, url := range []string{healthURL(pd.deployment), pd.composeHealthURL()} {
		p := startPoller(url, downtimePoll)
		werr := p.waitOK(ctx, 3, 30*time.Second)
		p.stop()
		if werr != nil {
			return nil, fmt.Errorf("peers set-up: %w", werr)
		}
	}

	stage("peers: process start and exit: `gpustack-deploy version` and `docker-compose version --short`, 1 warm-up + %d runs each", res.runs)
	for i := range 1 + res.runs {
		for k := range 2 {
			var x sample
			var err error
			if (i+k)%2 == 0 {
				x, err = b.tool(ctx, pd.deployment, nil, "version")
			} else {
				x, err = b.launchCmd(ctx, pd.composeDir, nil, bin, "version", "--short")
			}
			if err != nil {
				return nil, err
			}
			if x.exit != 0 {
				return nil, fmt.Errorf("version: exit %d\n%s", x.exit, x.output())
			}
			if i > 0 {
				if (i+k)%2 == 0 {
					res.versionGSD.add(x)
				} else {
					res.versionCompose.add(x)
				}
			}
		}
	}

	res.plain = b.counts(ctx)
	stage("peers: no-op, engine as found (%d containers, %d volumes): 1 warm-up + %d rounds of plan, apply, compose up -d", res.plain.containers, res.plain.volumes, res.runs)
	if err := b.peersNoop(ctx, pd, &res.noop, res.runs); err != nil {
		return nil, err
	}
	if b.o.unrelated > 0 {
		stage("peers: creating %d unrelated containers (not started) and %d unrelated volumes", b.o.unrelated, b.o.unrelated)
		if err := b.createUnrelated(ctx, b.o.unrelated); err != nil {
			return nil, err
		}
		res.loaded = b.counts(ctx)
		stage("peers: no-op, loaded engine (%d containers, %d volumes): 1 warm-up + %d rounds", res.loaded.containers, res.loaded.volumes, res.runs)
		nerr := b.peersNoop(ctx, pd, &res.noopLoaded, res.runs)
		stage("peers: removing the unrelated containers and volumes")
		if err := errors.Join(nerr, b.removeUnrelated(ctx)); err != nil {
			return nil, err
		}
	}

	stage("peers: config change (%s) → recreate: 1 warm-up + %d rounds of gpustack-deploy apply and docker-compose up -d, alternating, polling /healthz every %v",
		peerEnv, res.runs, downtimePoll)
	for i := range 1 + res.runs {
		var line []string
		for k := range numRec {
			m := (i + k) % numRec
			x, o, err := b.peersRecreateOnce(ctx, pd, m, i)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				continue
			}
			res.recreate[m].add(x)
			res.recHealthy[m] = append(res.recHealthy[m], o.lead+o.down)
			res.recDown[m] = append(res.recDown[m], o.down)
			res.recWindows[m] = append(res.recWindows[m], o.windows)
			res.recHeld[m] = append(res.recHeld[m], o.held)
			res.recSlowOK[m] = append(res.recSlowOK[m], o.slowestOK)
			line = append(line, fmt.Sprintf("%s %v (200 again after %v)", recKinds[m], x.wall.Round(time.Millisecond), (o.lead+o.down).Round(time.Millisecond)))
		}
		if i == 0 {
			stage("  warm-up round done")
			continue
		}
		stage("  round %d/%d: %s", i, res.runs, strings.Join(line, ", "))
	}
	if res.backups, err = peerBackups(pd.deployment); err != nil {
		return nil, err
	}
	res.loadEnd = loadavgLine()
	stage("peers: /proc/loadavg at the end: %s", res.loadEnd)
	return res, nil
}

// loadavgLine is /proc/loadavg as it is, or "unknown".
func loadavgLine() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// newPeerDeployment writes the deployment's file (the bench's usual one at
// v0.5.1, plus GSDBENCH_NOTE = var.note in env) and picks the compose
// project's names and port.
func (b *bench) newPeerDeployment() (*peerDeployment, error) {
	port, err := b.freePort()
	if err != nil {
		return nil, err
	}
	d := &deployment{name: b.name("peer"), port: port, backup: true}
	d.dir = filepath.Join(b.tmp, d.name)
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	pd := &peerDeployment{deployment: d, note: "n0", cnote: "n0"}
	variable := "variable \"note\" { default = \"n0\" }\n"
	env := ", " + peerEnv + " = var.note"
	src := fmt.Sprintf(hclTemplate, b.runID, toVer, d.name, d.port, labelRun, d.backup, variable, env)
	if err := os.WriteFile(d.file(), []byte(src), 0o644); err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	// Compose lower-cases project names and keeps [-_a-z0-9]: the run's
	// prefix (gsdbench-<hex>-) passes unchanged.
	pd.project = b.name("compose")
	pd.cname = pd.project + "-gpustack"
	pd.composeDir = filepath.Join(b.tmp, pd.project)
	pd.composeFile = filepath.Join(pd.composeDir, "docker-compose.yml")
	if pd.cport, err = b.freePort(); err != nil {
		return nil, err
	}
	return pd, os.MkdirAll(pd.composeDir, 0o755)
}

func (pd *peerDeployment) composeHealthURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(pd.cport) + "/healthz"
}

// writeCompose writes the compose file: the container spec.For derives
// for the deployment (as the unguarded baseline does), with the compose
// project's own names and port, GSDBENCH_NOTE taken from compose's
// environment. It returns the file's text.
func (pd *peerDeployment) writeCompose(b *bench) (string, error) {
	u, err := b.unguardedSpec(pd.deployment, map[string]string{"note": pd.note})
	if err != nil {
		return "", err
	}
	q := strconv.Quote // Go's quoting of printable ASCII is a valid YAML double-quoted scalar
	esc := func(s string) string { return strings.ReplaceAll(s, "$", "$$") }
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("# gpustack-deploy benchmark, peers section (run %s): the container of %s for docker-compose; removed at the end of the run.", b.runID, pd.name)
	p("version: \"2.4\"")
	p("services:")
	p("  gpustack:")
	p("    image: %s", q(u.cfg.Image))
	p("    container_name: %s", q(pd.cname))
	if len(u.cfg.Cmd) > 0 {
		p("    command:")
		for _, a := range u.cfg.Cmd {
			p("      - %s", q(esc(a)))
		}
	}
	p("    environment:")
	for _, e := range u.cfg.Env {
		if strings.HasPrefix(e, peerEnv+"=") {
			p("      - %s", q(peerEnv+"=${"+peerEnv+"}"))
			continue
		}
		p("      - %s", q(esc(e)))
	}
	p("    ports:")
	for cp := range u.host.PortBindings {
		p("      - %s", q(fmt.Sprintf("127.0.0.1:%d:%s", pd.cport, nat.Port(cp).Port())))
	}
	p("    volumes:")
	vols := map[string]string{}
	for _, m := range u.host.Mounts {
		key := strings.TrimPrefix(m.Source, pd.name+"-")
		vols[key] = pd.project + "-" + key
		p("      - %s", q(key+":"+m.Target))
	}
	if u.host.RestartPolicy.Name != "" {
		p("    restart: %s", q(string(u.host.RestartPolicy.Name)))
	}
	p("    stop_grace_period: %s", q(stopGrace.String()))
	p("    network_mode: bridge")
	p("    labels:")
	p("      %s: %s", q(labelRun), q(b.runID))
	p("volumes:")
	keys := make([]string, 0, len(vols))
	for k := range vols {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p("  %s:", k)
		p("    name: %s", q(vols[k]))
		p("    labels:")
		p("      %s: %s", q(labelRun), q(b.runID))
	}
	text := w.String()
	if err := os.WriteFile(pd.composeFile, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("peers: %w", err)
	}
	return text, nil
}

// launchCmd runs any program through bench/launch in dir, timed like the
// binary.
func (b *bench) launchCmd(ctx context.Context, dir string, extraEnv []string, prog string, args ...string) (sample, error) {
	cmd := exec.CommandContext(ctx, b.launch, append([]string{prog}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	rd, wr, err := os.Pipe()
	if err != nil {
		return sample{}, fmt.Errorf("pipe: %w", err)
	}
	defer rd.Close()
	cmd.ExtraFiles = []*os.File{wr}
	err = cmd.Start()
	wr.Close()
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", b.launch, err)
	}
	result, _ := io.ReadAll(rd)
	err = cmd.Wait()
	s := sample{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	if ctx.Err() != nil {
		return s, ctx.Err()
	}
	var wallNs, own, cpuUs int64
	if _, perr := fmt.Sscan(string(result), &wallNs, &s.maxRSS, &s.exit, &own, &cpuUs); perr != nil {
		return s, fmt.Errorf("%s %v: no result from the launcher (%v, %v)\n%s", prog, args, err, perr, s.output())
	}
	s.wall = time.Duration(wallNs)
	s.cpu = time.Duration(cpuUs) * time.Microsecond
	return s, nil
}

// compose runs docker-compose on the project's file through the launcher,
// with GSDBENCH_NOTE set to the project's current note.
func (b *bench) compose(ctx context.Context, pd *peerDeployment, args ...string) (sample, error) {
	bin, err := exec.LookPath(composeBinary)
	if err != nil {
		return sample{}, fmt.Errorf("peers: %w", err)
	}
	full := append([]string{"--ansi", "never", "-p", pd.project, "-f", pd.composeFile}, args...)
	return b.launchCmd(ctx, pd.composeDir, []string{peerEnv + "=" + pd.cnote}, bin, full...)
}

// peersNoop runs 1 warm-up and runs rounds of the three no-op methods in
// rotating order into s, checking that none changes anything.
func (b *bench) peersNoop(ctx context.Context, pd *peerDeployment, s *[numNoop]series, runs int) error {
	gsdID, err := b.containerID(ctx, pd.name)
	if err != nil {
		return err
	}
	cmpID, err := b.containerID(ctx, pd.cname)
	if err != nil {
		return err
	}
	noteVar := "note=" + pd.note
	for i := range 1 + runs {
		for k := range numNoop {
			m := (i + k) % numNoop
			var x sample
			switch m {
			case noopPlan:
				x, err = b.tool(ctx, pd.deployment, nil, "plan", "--detailed-exitcode", "--var", noteVar)
			case noopApply:
				x, err = b.tool(ctx, pd.deployment, nil, "apply", "--auto-approve", "--var", noteVar)
				if err == nil && x.exit == 0 && !strings.Contains(string(x.stdout), "No changes") {
					err = fmt.Errorf("no-op apply: no \"No changes\" in its output\n%s", x.output())
				}
			case noopCompose:
				x, err = b.compose(ctx, pd, "up", "-d")
			}
			if err != nil {
				return err
			}
			if x.exit != 0 {
				return fmt.Errorf("no-op %s: exit %d\n%s", noopKinds[m], x.exit, x.output())
			}
			if i > 0 {
				s[m].add(x)
			}
		}
	}
	// Nothing may have been replaced.
	for name, id := range map[string]string{pd.name: gsdID, pd.cname: cmpID} {
		now, err := b.containerID(ctx, name)
		if err != nil {
			return err
		}
		if now != id {
			return fmt.Errorf("no-op runs replaced %s (%.12s → %.12s)", name, id, now)
		}
	}
	return nil
}

func (b *bench) containerID(ctx context.Context, name string) (string, error) {
	j, err := b.cli.ContainerInspect(ctx, name)
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", name, err)
	}
	return j.ID, nil
}

// peersRecreateOnce changes GSDBENCH_NOTE of one side (method m) to a new
// value and applies it while a client polls that side's /healthz; it
// returns the process sample and the outage the client saw, after checking
// that the container was replaced and runs with the new value.
func (b *bench) peersRecreateOnce(ctx context.Context, pd *peerDeployment, m, round int) (sample, outage, error) {
	url, name := healthURL(pd.deployment), pd.name
	if m == recCompose {
		url, name = pd.composeHealthURL(), pd.cname
	}
	before, err := b.containerID(ctx, name)
	if err != nil {
		return sample{}, outage{}, err
	}
	note := fmt.Sprintf("r%d", round+1)
	p := startPoller(url, downtimePoll)
	if err := p.waitOK(ctx, 3, 30*time.Second); err != nil {
		p.stop()
		return sample{}, outage{}, fmt.Errorf("%s before the change: %w", name, err)
	}
	opStart := time.Now()
	var x sample
	switch m {
	case recGSD:
		pd.note = note
		x, err = b.tool(ctx, pd.deployment, nil, "apply", "--auto-approve", "--var", "note="+note)
	case recCompose:
		pd.cnote = note
		x, err = b.compose(ctx, pd, "up", "-d")
	}
	if err == nil && x.exit != 0 {
		err = fmt.Errorf("%s recreate: exit %d\n%s", recKinds[m], x.exit, x.output())
	}
	if err != nil {
		p.stop()
		return x, outage{}, err
	}
	werr := p.waitOK(ctx, stableAfter, 30*time.Second)
	polls := p.stop()
	if werr != nil {
		return x, outage{}, fmt.Errorf("%s after the %s recreate: %w", name, recKinds[m], werr)
	}
	o, ok := outageOf(polls, opStart)
	if !ok {
		return x, outage{}, fmt.Errorf("%s: the client saw no outage during the %s recreate (%d polls)", name, recKinds[m], len(polls))
	}
	after, err := b.containerID(ctx, name)
	if err != nil {
		return x, outage{}, err
	}
	if after == before {
		return x, outage{}, fmt.Errorf("%s recreate: %s was not replaced", recKinds[m], name)
	}
	if err := b.checkEnv(ctx, name, peerEnv+"="+note); err != nil {
		return x, outage{}, err
	}
	img, err := b.runningImage(ctx, name)
	if err != nil {
		return x, outage{}, err
	}
	if img != imageRepo+":"+toTag {
		return x, outage{}, fmt.Errorf("after the %s recreate, %s runs %q, want %s:%s", recKinds[m], name, img, imageRepo, toTag)
	}
	return x, o, nil
}

// peerBackups counts the deployment's backups (an env change takes none).
func peerBackups(d *deployment) (int, error) {
	n := 0
	if _, err := os.Stat(filepath.Join(d.dir, "backups")); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	err := filepath.WalkDir(filepath.Join(d.dir, "backups"), func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && e.Name() == "manifest.json" {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count backups of %s: %w", d.name, err)
	}
	return n, nil
}

// peersCleanup removes the compose project (docker-compose down -v, then
// whatever still carries its project label or its names: containers,
// volumes, networks) and the deployment.
func (b *bench) peersCleanup(ctx context.Context, bin string, pd *peerDeployment) error {
	var errs []error
	if pd.composeFile != "" {
		if _, err := os.Stat(pd.composeFile); err == nil {
			cmd := exec.CommandContext(ctx, bin, "--ansi", "never", "-p", pd.project, "-f", pd.composeFile, "down", "-v", "--remove-orphans", "-t", "5")
			cmd.Dir = pd.composeDir
			cmd.Env = append(os.Environ(), peerEnv+"="+pd.cnote)
			if out, err := cmd.CombinedOutput(); err != nil {
				// Not fatal: the sweep below removes the same objects.
				stage("peers cleanup: docker-compose down -v: %v\n%s", err, out)
			}
		}
	}
	project := filters.NewArgs(filters.Arg("label", composeProjectLabel+"="+pd.project))
	cts, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: project})
	if err != nil {
		errs = append(errs, fmt.Errorf("list containers of %s: %w", pd.project, err))
	}
	for _, c := range cts {
		if err := b.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %.12s: %w", c.ID, err))
		}
	}
	if err := b.cli.ContainerRemove(ctx, pd.cname, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("remove container %s: %w", pd.cname, err))
	}
	vl, err := b.cli.VolumeList(ctx, volume.ListOptions{Filters: project})
	if err != nil {
		errs = append(errs, fmt.Errorf("list volumes of %s: %w", pd.project, err))
	} else {
		for _, v := range vl.Volumes {
			if err := b.cli.VolumeRemove(ctx, v.Name, true); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			}
		}
	}
	for _, v := range []string{pd.project + "-data", pd.project + "-cache"} {
		if err := b.cli.VolumeRemove(ctx, v, true); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v, err))
		}
	}
	nets, err := b.cli.NetworkList(ctx, network.ListOptions{Filters: project})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks of %s: %w", pd.project, err))
	}
	for _, n := range nets {
		if err := b.cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
		}
	}
	if err := b.teardown(ctx, pd.deployment); err != nil {
		errs = append(errs, fmt.Errorf("remove deployment %s: %w", pd.name, err))
	}
	return errors.Join(errs...)
}
