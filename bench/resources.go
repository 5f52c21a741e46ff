package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/gpustack-deploy/gpustack-deploy/emulator/image"
)

// labelRun marks every container and volume of one bench run (value: the
// run id). The deployments get it through their `labels` attribute.
const labelRun = "gsdbench.run"

// labelDeployment is the label gpustack-deploy puts on its containers,
// including the helper containers it creates to read a volume.
const labelDeployment = "io.gpustack-deploy.deployment"

const (
	imageRepo  = "gpustack/gpustack"
	fromTag    = "v0.4.1-cpu"
	toTag      = "v0.5.1-cpu"
	fromVer    = "v0.4.1"
	toVer      = "v0.5.1"
	variantCPU = "cpu"
)

// bench holds what one run shares: the binary, the engine client, the names.
type bench struct {
	o      options
	root   string // module root
	tmp    string // temporary directory: binary, deployments' files
	bin    string // the gpustack-deploy binary
	launch string // bench/launch, which runs bin and reports its figures
	runID  string // hex, unique per run
	prefix string // every container and volume name starts with it
	cli    *client.Client
	// sock is the engine's unix socket, for the tracing proxy ("" if none).
	sock string
	// facts about the machine, for the report.
	facts facts

	mu    sync.Mutex
	seq   int
	ports map[int]bool
	// launcherHWM is the largest peak RSS (KiB) the launcher had when it
	// started the binary: a bound on what ru_maxrss can carry over.
	launcherHWM int64
}

func newBench(ctx context.Context, o options) (*bench, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	runID := hex.EncodeToString(id)
	b := &bench{o: o, root: root, runID: runID, prefix: "gsdbench-" + runID + "-", ports: map[int]bool{}}
	if b.tmp, err = os.MkdirTemp("", "gsdbench-"+runID+"-"); err != nil {
		return nil, err
	}
	b.cli, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return b, fmt.Errorf("docker client: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := b.cli.Ping(pingCtx); err != nil {
		return b, fmt.Errorf("the Docker engine at %s does not answer (start it with: nohup dockerd >/tmp/dockerd.log 2>&1 &): %w", b.cli.DaemonHost(), err)
	}
	b.cli.NegotiateAPIVersion(ctx)
	if h := b.cli.DaemonHost(); strings.HasPrefix(h, "unix://") {
		b.sock = strings.TrimPrefix(h, "unix://")
	}
	stage("run %s: temporary directory %s", runID, b.tmp)

	stage("building the gpustack-deploy binary and the launcher")
	b.bin = filepath.Join(b.tmp, "gpustack-deploy")
	build := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "./cmd/gpustack-deploy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return b, fmt.Errorf("go build ./cmd/gpustack-deploy: %w\n%s", err, out)
	}
	b.launch = filepath.Join(b.tmp, "launch")
	build = exec.CommandContext(ctx, "go", "build", "-o", b.launch, "./bench/launch")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return b, fmt.Errorf("go build ./bench/launch: %w\n%s", err, out)
	}
	stage("building emulator images %s:%s and %s:%s (kept when up to date)", imageRepo, fromTag, imageRepo, toTag)
	var specs []image.Spec
	for _, tag := range []string{fromTag, toTag} {
		s, err := image.SpecFor(imageRepo, tag)
		if err != nil {
			return b, err
		}
		specs = append(specs, s)
	}
	if err := image.Build(ctx, b.cli, root, specs...); err != nil {
		return b, err
	}
	b.facts = gatherFacts(ctx, b.cli, root, b.tmp)
	return b, nil
}

// moduleRoot is the directory of the go.mod of the current module.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run from inside the gpustack-deploy module (go run ./bench)")
	}
	return filepath.Dir(gomod), nil
}

// name returns a fresh resource name with the run's prefix.
func (b *bench) name(kind string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	return fmt.Sprintf("%s%s%d", b.prefix, kind, b.seq)
}

// freePort returns a loopback port that nothing listens on now and that
// this run has not handed out before.
func (b *bench) freePort() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		b.mu.Lock()
		taken := b.ports[p]
		b.ports[p] = true
		b.mu.Unlock()
		if !taken {
			return p, nil
		}
	}
	return 0, errors.New("no free loopback port")
}

// deployment is one gpustack-deploy deployment in its own directory.
type deployment struct {
	name   string // deployment, container and volume-name stem
	dir    string // holds gpustack.hcl, backups/ and .gpustack-deploy/
	port   int
	backup bool // backup.before_upgrade
}

func (d *deployment) file() string { return filepath.Join(d.dir, "gpustack.hcl") }

// hclTemplate mirrors examples/basic: a v0.x CPU server with a data and a
// cache volume, published on loopback only.
const hclTemplate = `# gpustack-deploy benchmark deployment (run %[1]s); removed at the end of the run.
variable "version" { default = %[2]q }

variable "admin_password" {
  sensitive = true
  default   = "bench-only-password"
}
%[7]s
gpustack %[3]q {
  version        = var.version
  variant        = "cpu"
  container_name = %[3]q
  port           = %[4]d
  listen_address = "127.0.0.1"
  args           = ["--disable-worker"]
  env            = { GPUSTACK_BOOTSTRAP_PASSWORD = var.admin_password%[8]s }
  labels         = { %[5]q = %[1]q }

  volume "data" { name = "%[3]s-data" }
  volume "cache" { name = "%[3]s-cache" }

  backup {
    dir            = "./backups"
    before_upgrade = %[6]t
  }

  health { timeout = "2m" }
}
`

// newDeployment writes the files of a fresh deployment whose version
// defaults to version.
func (b *bench) newDeployment(kind, version string, backup bool) (*deployment, error) {
	return b.newDeploymentWith(kind, version, backup, false)
}

// delayVariable and delayEnv give a deployment the variable startup_delay
// (default "0s", no delay), passed to the emulator as
// GPUSTACK_EMULATOR_STARTUP_DELAY.
const (
	delayVariable = "variable \"startup_delay\" { default = \"0s\" }\n"
	delayEnv      = ", GPUSTACK_EMULATOR_STARTUP_DELAY = var.startup_delay"
)

// newDeploymentWith is newDeployment, with the startup_delay variable when
// delay is set.
func (b *bench) newDeploymentWith(kind, version string, backup, delay bool) (*deployment, error) {
	port, err := b.freePort()
	if err != nil {
		return nil, err
	}
	d := &deployment{name: b.name(kind), port: port, backup: backup}
	d.dir = filepath.Join(b.tmp, d.name)
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, err
	}
	variable, env := "", ""
	if delay {
		variable, env = delayVariable, delayEnv
	}
	src := fmt.Sprintf(hclTemplate, b.runID, version, d.name, d.port, labelRun, backup, variable, env)
	return d, os.WriteFile(d.file(), []byte(src), 0o644)
}

// setup applies the deployment at its default version (not timed) and
// checks that the tool reports success.
func (b *bench) setup(ctx context.Context, d *deployment) error {
	s, err := b.tool(ctx, d, nil, "apply", "--auto-approve")
	if err != nil {
		return fmt.Errorf("set up %s: %w", d.name, err)
	}
	if s.exit != 0 {
		return fmt.Errorf("set up %s: apply exited %d\n%s", d.name, s.exit, s.output())
	}
	return nil
}

// teardown removes a deployment's containers (its own, the one kept
// aside, helpers) and volumes. It is not timed.
func (b *bench) teardown(ctx context.Context, d *deployment) error {
	var errs []error
	for _, n := range []string{d.name, d.name + "-gsd-previous"} {
		if err := b.cli.ContainerRemove(ctx, n, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	helpers, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", labelDeployment+"="+d.name))})
	if err != nil {
		errs = append(errs, err)
	}
	for _, h := range helpers {
		if err := b.cli.ContainerRemove(ctx, h.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	for _, v := range []string{d.name + "-data", d.name + "-cache"} {
		if err := b.cli.VolumeRemove(ctx, v, true); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// createUnrelated creates n containers (never started) from the emulator
// image and n volumes, all labelled with the run, with a few workers.
func (b *bench) createUnrelated(ctx context.Context, n int) error {
	const workers = 8
	jobs := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				labels := map[string]string{labelRun: b.runID}
				name := fmt.Sprintf("%sunrelated%03d", b.prefix, i)
				if _, err := b.cli.ContainerCreate(ctx, &container.Config{Image: imageRepo + ":" + fromTag, Labels: labels}, &container.HostConfig{}, nil, nil, name); err != nil {
					errc <- fmt.Errorf("create unrelated container %s: %w", name, err)
					return
				}
				if _, err := b.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name + "-vol", Labels: labels}); err != nil {
					errc <- fmt.Errorf("create unrelated volume %s-vol: %w", name, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range n {
		select {
		case jobs <- i:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errc)
	if err == nil {
		err = <-errc
	}
	return err
}

// removeUnrelated removes the unrelated containers and volumes.
func (b *bench) removeUnrelated(ctx context.Context) error {
	return b.removeByLabel(ctx, func(name string) bool { return strings.HasPrefix(name, b.prefix+"unrelated") })
}

// cleanup removes everything this run created, whatever state the run
// stopped in: containers and volumes by label and by name prefix, helper
// containers of its deployments, then the temporary directory.
func (b *bench) cleanup() error {
	var errs []error
	if b.cli != nil {
		stage("removing the containers and volumes of run %s", b.runID)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := b.removeByLabel(ctx, func(string) bool { return true }); err != nil {
			errs = append(errs, err)
		}
		if left, err := b.leftovers(ctx); err != nil {
			errs = append(errs, err)
		} else if len(left) > 0 {
			errs = append(errs, fmt.Errorf("left on the engine: %s", strings.Join(left, ", ")))
		}
		b.cli.Close()
	}
	if b.tmp != "" {
		if b.o.keep {
			stage("kept %s", b.tmp)
		} else if err := os.RemoveAll(b.tmp); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeByLabel removes the run's containers and volumes whose name match
// selects: first containers (so that the volumes are free), then volumes.
func (b *bench) removeByLabel(ctx context.Context, match func(name string) bool) error {
	cts, vols, err := b.owned(ctx)
	if err != nil {
		return err
	}
	var errs []error
	var mu sync.Mutex
	parallel(8, len(cts), func(i int) {
		if !match(cts[i].name) {
			return
		}
		if err := b.cli.ContainerRemove(ctx, cts[i].id, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	parallel(8, len(vols), func(i int) {
		if !match(vols[i]) {
			return
		}
		if err := b.cli.VolumeRemove(ctx, vols[i], true); err != nil && !cerrdefs.IsNotFound(err) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	return errors.Join(errs...)
}

type owned struct{ id, name string }

// owned lists the run's containers and volumes: by label, by name prefix,
// and gpustack-deploy's helper containers of the run's deployments.
func (b *bench) owned(ctx context.Context) ([]owned, []string, error) {
	seen := map[string]bool{}
	var cts []owned
	add := func(list []container.Summary, keep func(container.Summary) bool) {
		for _, c := range list {
			if seen[c.ID] || !keep(c) {
				continue
			}
			seen[c.ID] = true
			name := c.ID
			if len(c.Names) > 0 {
				name = strings.TrimPrefix(c.Names[0], "/")
			}
			cts = append(cts, owned{c.ID, name})
		}
	}
	byLabel, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", labelRun+"="+b.runID))})
	if err != nil {
		return nil, nil, err
	}
	add(byLabel, func(container.Summary) bool { return true })
	byName, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", b.prefix))})
	if err != nil {
		return nil, nil, err
	}
	add(byName, func(c container.Summary) bool {
		for _, n := range c.Names {
			if strings.HasPrefix(strings.TrimPrefix(n, "/"), b.prefix) {
				return true
			}
		}
		return false
	})
	helpers, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", labelDeployment))})
	if err != nil {
		return nil, nil, err
	}
	add(helpers, func(c container.Summary) bool { return strings.HasPrefix(c.Labels[labelDeployment], b.prefix) })

	vl, err := b.cli.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("name", b.prefix))})
	if err != nil {
		return nil, nil, err
	}
	var vols []string
	for _, v := range vl.Volumes {
		if strings.HasPrefix(v.Name, b.prefix) || v.Labels[labelRun] == b.runID {
			vols = append(vols, v.Name)
		}
	}
	return cts, vols, nil
}

// leftovers names what owned still finds.
func (b *bench) leftovers(ctx context.Context) ([]string, error) {
	cts, vols, err := b.owned(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cts {
		out = append(out, "container "+c.name)
	}
	for _, v := range vols {
		out = append(out, "volume "+v)
	}
	return out, nil
}

// parallel runs f(0..n-1) on up to workers goroutines.
func parallel(workers, n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
