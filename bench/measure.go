package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// healthPoll is the /healthz polling period of the baseline: the
// executor's default (Executor.PollInterval unset → 100 ms, see poll() in
// executor/verify.go), which the binary uses since it sets no other.
const healthPoll = 100 * time.Millisecond

// stopGrace is what the executor gives a stopping container (its default
// StopGrace); the emulator exits on SIGTERM long before.
const stopGrace = 30 * time.Second

// sample is one process run of the binary.
type sample struct {
	wall   time.Duration
	cpu    time.Duration // user + system CPU time of the binary
	maxRSS int64         // KiB, from getrusage of the child (Linux: ru_maxrss in KiB)
	exit   int
	stdout []byte
	stderr []byte
}

func (s sample) output() string {
	return string(s.stdout) + string(s.stderr)
}

// tool runs the binary with args in the deployment's directory, against the
// file of d, through the launcher (bench/launch), which times it from just
// before fork/exec to just after wait and takes its ru_maxrss.
func (b *bench) tool(ctx context.Context, d *deployment, extraEnv []string, args ...string) (sample, error) {
	return b.toolOut(ctx, d, extraEnv, nil, args...)
}

// toolOut is tool with the binary's standard output also written to out
// as it comes (nil: only kept in the sample).
func (b *bench) toolOut(ctx context.Context, d *deployment, extraEnv []string, out io.Writer, args ...string) (sample, error) {
	if args[0] != "version" { // the only command without -f
		args = append(args, "-f", d.file())
	}
	cmd := exec.CommandContext(ctx, b.launch, append([]string{b.bin}, args...)...)
	cmd.Dir = d.dir
	cmd.Env = append(os.Environ(), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if out != nil {
		cmd.Stdout = io.MultiWriter(&stdout, out)
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return sample{}, err
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
		return s, fmt.Errorf("%s %v: no result from the launcher (%v, %v)\n%s", filepath.Base(b.bin), args, err, perr, s.output())
	}
	s.wall = time.Duration(wallNs)
	s.cpu = time.Duration(cpuUs) * time.Microsecond
	b.mu.Lock()
	b.launcherHWM = max(b.launcherHWM, own)
	b.mu.Unlock()
	return s, nil
}

// series is one measured quantity over runs.
type series struct {
	walls []time.Duration
	cpus  []time.Duration // empty for in-process measurements
	rss   []int64         // KiB; empty for in-process measurements
}

func (s *series) add(x sample) {
	s.walls = append(s.walls, x.wall)
	s.cpus = append(s.cpus, x.cpu)
	s.rss = append(s.rss, x.maxRSS)
}

// cpu is the median user + system CPU time, or 0 when not measured.
func (s series) cpu() time.Duration { return medianDur(s.cpus) }

func (s series) n() int { return len(s.walls) }

func (s series) median() time.Duration { return medianDur(s.walls) }

// p90 is the nearest-rank 90th percentile.
func (s series) p90() time.Duration {
	if len(s.walls) == 0 {
		return 0
	}
	w := slices.Clone(s.walls)
	slices.Sort(w)
	k := int(math.Ceil(0.9*float64(len(w)))) - 1
	return w[max(k, 0)]
}

func (s series) min() time.Duration {
	if len(s.walls) == 0 {
		return 0
	}
	return slices.Min(s.walls)
}

func (s series) maxRSS() int64 {
	if len(s.rss) == 0 {
		return 0
	}
	return slices.Max(s.rss)
}

func medianDur(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	w := slices.Clone(d)
	slices.Sort(w)
	if len(w)%2 == 1 {
		return w[len(w)/2]
	}
	return (w[len(w)/2-1] + w[len(w)/2]) / 2
}

// unguarded is the container the baseline starts: the deployment's
// desired container at the new version, derived exactly as the tool
// derives it (spec.For), as the Engine API wants it. The restart policy is
// set at creation (the tool sets it only after verification).
type unguarded struct {
	name string
	cfg  *container.Config
	host *container.HostConfig
	url  string
}

func (b *bench) unguardedSpec(d *deployment, vars map[string]string) (*unguarded, error) {
	desired, _, diags := config.Load([]string{d.file()}, config.Options{Vars: vars})
	if diags.HasErrors() {
		return nil, fmt.Errorf("load %s: %s", d.file(), diags.Error())
	}
	dep := desired.Deployments[0]
	rel, _ := catalog.Default().Release(dep.Version)
	s := spec.For(dep, rel.Head)
	cport := nat.Port(strconv.Itoa(s.Port.ContainerPort) + "/tcp")
	u := &unguarded{
		name: s.Name,
		cfg: &container.Config{
			Image: s.Image, Cmd: s.ArgStrings(), Env: s.EnvStrings(), Labels: s.Labels,
			ExposedPorts: nat.PortSet{cport: struct{}{}},
		},
		host: &container.HostConfig{
			PortBindings:  nat.PortMap{cport: []nat.PortBinding{{HostIP: s.Port.HostIP, HostPort: strconv.Itoa(s.Port.HostPort)}}},
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(s.Restart)},
		},
		url: "http://" + dep.Health.Address + ":" + strconv.Itoa(dep.Port) + "/healthz",
	}
	for _, m := range s.Mounts {
		if m.Volume == "" {
			return nil, fmt.Errorf("%s: the baseline handles named volumes only", d.name)
		}
		u.host.Mounts = append(u.host.Mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Volume, Target: m.Target})
	}
	return u, nil
}

// baselineSteps are the durations of the unguarded upgrade's steps.
type baselineSteps struct {
	connect, stop, remove, create, start, healthy time.Duration
	probes                                        int
}

// baselineUpgrade stops and removes the running container and runs the new
// image with the same volumes, port and arguments, through the Engine API,
// until /healthz answers 200. The timing includes making the client.
func baselineUpgrade(ctx context.Context, u *unguarded) (time.Duration, baselineSteps, error) {
	var st baselineSteps
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	start := time.Now()
	lap := start
	step := func(d *time.Duration) {
		now := time.Now()
		*d = now.Sub(lap)
		lap = now
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return 0, st, err
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx); err != nil {
		return 0, st, err
	}
	step(&st.connect)
	grace := int(stopGrace / time.Second)
	if err := cli.ContainerStop(ctx, u.name, container.StopOptions{Timeout: &grace}); err != nil {
		return 0, st, fmt.Errorf("stop %s: %w", u.name, err)
	}
	step(&st.stop)
	if err := cli.ContainerRemove(ctx, u.name, container.RemoveOptions{}); err != nil {
		return 0, st, fmt.Errorf("remove %s: %w", u.name, err)
	}
	step(&st.remove)
	created, err := cli.ContainerCreate(ctx, u.cfg, u.host, nil, nil, u.name)
	if err != nil {
		return 0, st, fmt.Errorf("create %s: %w", u.name, err)
	}
	step(&st.create)
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return 0, st, fmt.Errorf("start %s: %w", u.name, err)
	}
	step(&st.start)
	// The same loop as the executor's waitHealthy: a ticker of the poll
	// period, each probe a GET with a 2 s timeout.
	tick := time.NewTicker(healthPoll)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case <-ctx.Done():
			return 0, st, ctx.Err()
		case <-deadline:
			return 0, st, fmt.Errorf("%s: no 200 from %s within 2m", u.name, u.url)
		case <-tick.C:
		}
		st.probes++
		if probe(ctx, hc, u.url) {
			step(&st.healthy)
			return time.Since(start), st, nil
		}
	}
}

func probe(ctx context.Context, hc *http.Client, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// runningImage returns the image reference of the named container if it
// runs, else "".
func (b *bench) runningImage(ctx context.Context, name string) (string, error) {
	j, err := b.cli.ContainerInspect(ctx, name)
	if err != nil {
		return "", err
	}
	if j.State == nil || !j.State.Running || j.Config == nil {
		return "", nil
	}
	return j.Config.Image, nil
}
