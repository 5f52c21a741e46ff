//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// Docker daemons of the test's own, beside the shared one.
//
// A private dockerd has its own socket, data root, exec root and pid file,
// runs without bridge or iptables rules, and lives in a network namespace
// made by the test: dockerd --bridge=none deletes any "docker0" it finds,
// which in the host's namespace is the shared daemon's bridge. Its
// containers use host networking, that is the namespace's. Several
// daemons may share one namespace (startCluster): a container listening
// on 127.0.0.1:PORT on one of them is reached from the containers of the
// others, as from one machine, and from nowhere else. The test reaches
// that address only from inside the namespace: gpustack-deploy runs there
// (netns.run), HTTP requests are made from a thread that entered it
// (netns.curl), and commands run in the containers (execWith).

// privateDaemon is a dockerd of the test's own, in a namespace that is
// its own (startPrivateDaemon) or that it shares (startCluster).
type privateDaemon struct {
	*netns
	bin, dir, sock string
	cmd            *exec.Cmd
	exited         chan struct{}
	cli            *client.Client
	started        bool     // it answered once: a later start that fails is a failure, not a skip
	killed         []string // the containers a kill left dead, until the daemon runs again
}

// dockerdBinary finds dockerd, or skips (fails with CI=true as root).
func dockerdBinary(t testing.TB) string {
	t.Helper()
	if noEngine != "" {
		t.Skip(noEngine)
	}
	bin, err := exec.LookPath("dockerd")
	if err != nil || os.Geteuid() != 0 {
		skipOrFail(t, fmt.Errorf("a daemon of its own needs root and dockerd (euid %d, %v)", os.Geteuid(), err))
	}
	if _, err := exec.LookPath("umount"); err != nil {
		skipOrFail(t, fmt.Errorf("a daemon of its own needs umount: %v", err))
	}
	return bin
}

// startPrivateDaemon starts a dockerd whose every path lies in a new
// directory and whose network is a new namespace; t.Cleanup removes its
// containers and volumes, stops it, and deletes the directory and the
// namespace.
func startPrivateDaemon(t testing.TB, bin string) *privateDaemon {
	t.Helper()
	ns := newNetns(t, "gsd-fault")
	pd := newPrivateDaemon(t, bin, ns)
	t.Cleanup(func() { pd.remove(t) })
	pd.start(t)
	return pd
}

// newPrivateDaemon prepares a daemon in ns (its directory and client);
// the caller starts it and registers its removal.
func newPrivateDaemon(t testing.TB, bin string, ns *netns) *privateDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "gsd-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	pd := &privateDaemon{netns: ns, bin: bin, dir: dir, sock: filepath.Join(dir, "docker.sock")}
	cli, err := client.NewClientWithOpts(client.WithHost("unix://"+pd.sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("client of the private daemon %s: %v", pd.sock, err)
	}
	pd.cli = cli
	return pd
}

// host is the daemon's address for DOCKER_HOST or a host block.
func (pd *privateDaemon) host() string { return "unix://" + pd.sock }

// start starts the daemon (again, on the same data root) and waits for it
// to answer. A daemon that cannot start the first time skips the test (it
// fails with CI=true as root); one that cannot start again fails it.
func (pd *privateDaemon) start(t testing.TB) {
	t.Helper()
	err := pd.launch()
	if err == nil {
		err = pd.ready(30 * time.Second)
	}
	if err == nil {
		pd.started, pd.killed = true, nil
		return
	}
	if pd.started {
		t.Fatalf("restart the private dockerd: %v", err)
	}
	skipOrFail(t, err)
}

// launch starts the dockerd process inside the namespace.
func (pd *privateDaemon) launch() error {
	log, err := os.OpenFile(filepath.Join(pd.dir, "dockerd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("dockerd log: %w", err)
	}
	defer log.Close()
	// --bridge=none deletes "docker0": only ever inside the namespace.
	cmd := exec.Command("nsenter", "--net="+pd.path(), "--", pd.bin,
		"--host", pd.host(), "--data-root", filepath.Join(pd.dir, "data"),
		"--exec-root", filepath.Join(pd.dir, "exec"), "--pidfile", filepath.Join(pd.dir, "docker.pid"),
		"--bridge=none", "--iptables=false", "--ip6tables=false")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", pd.bin, err)
	}
	pd.cmd = cmd
	pd.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(pd.cmd, pd.exited)
	return nil
}

// ready waits for the daemon to answer a ping.
func (pd *privateDaemon) ready(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := pd.cli.Ping(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-pd.exited:
			b, _ := os.ReadFile(filepath.Join(pd.dir, "dockerd.log"))
			return fmt.Errorf("the private dockerd on %s exited: %s", pd.sock, lastLines(b, 10))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the private dockerd does not answer on %s after %s: %v", pd.sock, limit, err)
		}
	}
}

// running reports whether the dockerd process runs.
func (pd *privateDaemon) running() bool {
	if pd.cmd == nil || pd.exited == nil {
		return false
	}
	select {
	case <-pd.exited:
		return false
	default:
		return true
	}
}

// stop sends the daemon SIGTERM, as `systemctl restart docker` does, and
// waits for it to exit (SIGKILL after a minute). Its containers stop with
// it.
func (pd *privateDaemon) stop(t testing.TB) {
	t.Helper()
	if !pd.running() {
		return
	}
	_ = pd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-pd.exited:
	case <-time.After(time.Minute):
		t.Errorf("the private dockerd (pid %d) did not stop in 1m; killed", pd.cmd.Process.Pid)
		_ = pd.cmd.Process.Kill()
		<-pd.exited
	}
}

// kill makes the daemon's host disappear: SIGKILL, at once, to dockerd,
// its containerd, the containerd shims and every container (SIGKILL to
// dockerd alone would leave the containers running: they live in their
// shims). Nothing is told, nothing is cleaned up; start brings the daemon
// back on the same data root, where its containers are found dead.
func (pd *privateDaemon) kill(t testing.TB) {
	t.Helper()
	if !pd.running() {
		t.Fatalf("kill: the private dockerd on %s is not running", pd.sock)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cts, err := pd.cli.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		t.Fatalf("kill: list the containers of %s: %v", pd.sock, err)
	}
	var inits []int
	var ids []string
	for _, ct := range cts {
		ids = append(ids, ct.ID)
		info, err := pd.cli.ContainerInspect(ctx, ct.ID)
		if err != nil {
			t.Fatalf("kill: inspect %s: %v", ct.ID, err)
		}
		if info.State != nil && info.State.Pid > 0 {
			inits = append(inits, info.State.Pid)
		}
	}
	// containerd and its shims name the daemon's exec root in their
	// command lines.
	helpers, err := pidsMentioning(pd.dir, pd.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("kill: %v", err)
	}
	pids := append(append([]int{pd.cmd.Process.Pid}, helpers...), inits...)
	for _, pid := range pids {
		// SIGKILL to a container's init ends its whole pid namespace.
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill: SIGKILL %d: %v", pid, err)
		}
	}
	<-pd.exited
	pd.killed = append([]string{}, ids...) // not nil, even with no container
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("kill: pid %d still runs 10s after SIGKILL", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A host that comes back has an empty /run. Here the exec root stays,
	// and the pid file of the dead containerd names a pid that may still
	// be a zombie (not yet reaped by init) or already be reused: dockerd
	// would take it for a running containerd and wait for its socket.
	if err := os.Remove(filepath.Join(pd.dir, "exec", "containerd", "containerd.pid")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("kill: %v", err)
	}
	t.Logf("killed the private dockerd on %s: dockerd, %d containerd processes, %d containers", pd.sock, len(helpers), len(inits))
}

// pidsMentioning lists the processes, other than self, whose command
// line contains s.
func pidsMentioning(s string, self int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out, nil
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state …; comm may hold spaces and parentheses.
	rest := b[bytes.LastIndexByte(b, ')')+1:]
	f := strings.Fields(string(rest))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// remove deletes what the daemon holds, stops it, and deletes its
// directory (its data root stays mounted on itself after it exits). A
// killed daemon is started again first, so that it cleans up after its
// dead containers (mounts, cgroups) itself; if it cannot, their cgroups
// are removed here.
func (pd *privateDaemon) remove(t testing.TB) {
	if pd.killed != nil && !pd.running() {
		err := pd.launch()
		if err == nil {
			err = pd.ready(30 * time.Second)
		}
		if err != nil {
			t.Errorf("cleanup: the killed daemon on %s did not come back: %v", pd.sock, err)
			for _, id := range pd.killed {
				dirs, _ := filepath.Glob("/sys/fs/cgroup/*/docker/" + id)
				for _, d := range append(dirs, "/sys/fs/cgroup/docker/"+id) {
					_ = syscall.Rmdir(d)
				}
			}
		}
	}
	if pd.running() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cts, _ := pd.cli.ContainerList(ctx, container.ListOptions{All: true})
		for _, ct := range cts {
			if err := pd.cli.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				t.Errorf("cleanup: remove container %s from %s: %v", ct.ID, pd.sock, err)
			}
		}
		vols, _ := pd.cli.VolumeList(ctx, volume.ListOptions{})
		for _, v := range vols.Volumes {
			if err := pd.cli.VolumeRemove(ctx, v.Name, true); err != nil {
				t.Errorf("cleanup: remove volume %s from %s: %v", v.Name, pd.sock, err)
			}
		}
		cancel()
	}
	pd.cli.Close()
	pd.stop(t)
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], pd.dir+"/") {
			_ = exec.Command("umount", "-l", f[1]).Run()
		}
	}
	if err := os.RemoveAll(pd.dir); err != nil {
		t.Errorf("remove the private daemon's directory: %v", err)
	}
}

// cluster is n private daemons in one network namespace: n machines on one
// loopback. hosts[i].cli is the engine of machine i (hosts[i].host() its
// address, for a host block); c.run runs gpustack-deploy on that network,
// c.curl asks its HTTP servers; c.port hands out ports. Everything with
// host networking shares the ports: two v2 servers in one cluster need
// distinct --port and --database-port (the embedded PostgreSQL listens on
// 5432 by default), two workers distinct --worker-port.
type cluster struct {
	*netns
	hosts []*privateDaemon
	mu    sync.Mutex
	ports map[int]bool
}

// startCluster starts n daemons in a new namespace and loads the images
// refs of the shared engine into each (saved once, loaded concurrently).
// t.Cleanup removes their containers and volumes, stops them, deletes
// their directories and the namespace.
func startCluster(t testing.TB, n int, refs []string) *cluster {
	t.Helper()
	bin := dockerdBinary(t)
	c := &cluster{netns: newNetns(t, "gsd-cl"), ports: map[int]bool{}}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, h := range c.hosts {
			wg.Add(1)
			go func() { defer wg.Done(); h.remove(t) }()
		}
		wg.Wait()
	})
	for range n {
		c.hosts = append(c.hosts, newPrivateDaemon(t, bin, c.netns))
	}
	began := time.Now()
	for _, h := range c.hosts {
		if err := h.launch(); err != nil {
			skipOrFail(t, err)
		}
	}
	for _, h := range c.hosts {
		if err := h.ready(60 * time.Second); err != nil {
			skipOrFail(t, err)
		}
		h.started = true
	}
	t.Logf("started %d daemons in netns %s in %s", n, c.name, time.Since(began).Round(time.Millisecond))
	if len(refs) > 0 {
		loadImages(t, refs, c.hosts)
	}
	return c
}

// loadImages saves refs from the shared engine once, to a file, and loads
// that file into every daemon concurrently; it checks that each daemon
// then has each image.
func loadImages(t testing.TB, refs []string, daemons []*privateDaemon) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	file := filepath.Join(t.TempDir(), "images.tar")
	if err := saveImages(ctx, refs, file); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %v (%d MiB) in %s", refs, st.Size()>>20, time.Since(began).Round(time.Millisecond))
	errs := make([]error, len(daemons))
	took := make([]time.Duration, len(daemons))
	var wg sync.WaitGroup
	for i, d := range daemons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			errs[i] = loadImageFile(ctx, d.cli, file, refs)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("load %v into daemon %d (%s): %v", refs, i, daemons[i].sock, err)
		}
		t.Logf("loaded the images into daemon %d in %s", i, took[i].Round(time.Millisecond))
	}
}

func saveImages(ctx context.Context, refs []string, file string) error {
	saved, err := docker.ImageSave(ctx, refs)
	if err != nil {
		return fmt.Errorf("save %v: %w", refs, err)
	}
	defer saved.Close()
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("save %v: %w", refs, err)
	}
	if _, err := io.Copy(f, saved); err != nil {
		f.Close()
		return fmt.Errorf("save %v to %s: %w", refs, file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save %v to %s: %w", refs, file, err)
	}
	return nil
}

// loadImageFile loads a saved archive and reads the load's progress
// stream for an error.
func loadImageFile(ctx context.Context, cli *client.Client, file string, refs []string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer f.Close()
	resp, err := cli.ImageLoad(ctx, f, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("load: read progress: %w", err)
		}
		if msg.Error != "" {
			return fmt.Errorf("load: %s", msg.Error)
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return fmt.Errorf("load: %s", msg.ErrorDetail.Message)
		}
	}
	for _, ref := range refs {
		if _, err := cli.ImageInspect(ctx, ref); err != nil {
			return fmt.Errorf("after the load: %w", err)
		}
	}
	return nil
}

// port returns a TCP port not yet handed out by this cluster. The
// namespace is fresh, so any port is free there; they are taken below
// 32768, out of the range of the kernel's ephemeral ports, so that no
// connection's local end can hold one.
func (c *cluster) port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if p := 20000 + rand.IntN(32768-20000); !c.ports[p] {
			c.ports[p] = true
			return p
		}
	}
}

// execWith is execIn on another engine.
func execWith(t testing.TB, cli *client.Client, name string, cmd ...string) string {
	t.Helper()
	out, err := execOn(cli, name, cmd...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// execOn runs cmd in a running container of cli and returns its standard
// output; an exit code other than 0 is an error that holds both outputs.
func execOn(cli *client.Client, name string, cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := cli.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", fmt.Errorf("exec %v in %s: %w", cmd, name, err)
	}
	att, err := cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", fmt.Errorf("exec %v in %s: %w", cmd, name, err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		return "", fmt.Errorf("exec %v in %s: %w", cmd, name, err)
	}
	info, err := cli.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return "", fmt.Errorf("exec %v in %s: %w", cmd, name, err)
	}
	if info.ExitCode != 0 {
		return stdout.String(), fmt.Errorf("exec %v in %s: exit %d\n%s%s", cmd, name, info.ExitCode, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
