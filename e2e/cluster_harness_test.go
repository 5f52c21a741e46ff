//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// The harness of the multi-engine scenarios (daemons_test.go): several
// dockerds in one network namespace, a GPUStack server on one, workers on
// the others. These tests prove the harness itself.

// clusterWorker is an item of `gpustack emulator workers`.
type clusterWorker struct {
	ID            int64           `json:"id"`
	Name          string          `json:"name"`
	State         string          `json:"state"`
	WorkerUUID    string          `json:"worker_uuid"`
	WorkerVersion *string         `json:"worker_version"`
	Maintenance   json.RawMessage `json:"maintenance"`
	HeartbeatTime *string         `json:"heartbeat_time"`
}

// runNode creates and starts on daemon h a container of ref named
// <name>-<random>: `gpustack start args…` with env, host networking (the
// cluster's namespace), a volume of its own on /var/lib/gpustack, and
// restart policy unless-stopped (it comes back with its daemon). The
// cluster's cleanup removes it and its volume. It returns the name.
func runNode(t testing.TB, h *privateDaemon, name, ref string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name += "-" + randomHex(4)
	cfg := &container.Config{Image: ref, Env: env, Cmd: args}
	hc := &container.HostConfig{
		NetworkMode:   "host",
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Mounts:        []mount.Mount{{Type: mount.TypeVolume, Source: name + "-data", Target: "/var/lib/gpustack"}},
	}
	if _, err := h.cli.ContainerCreate(ctx, cfg, hc, nil, nil, name); err != nil {
		t.Fatalf("create %s on %s: %v", name, h.sock, err)
	}
	if err := h.cli.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		t.Fatalf("start %s on %s: %v", name, h.sock, err)
	}
	return name
}

// nodeLogs returns a container's log, for failure messages.
func nodeLogs(cli *client.Client, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := cli.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Sprintf("(log of %s: %v)", name, err)
	}
	defer r.Close()
	var b strings.Builder
	_, _ = stdcopy.StdCopy(&b, &b, r)
	return b.String()
}

// syncBuffer is an io.Writer a process and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitUntil polls cond every 100 ms for up to limit; on time-out it fails
// with what and the output of logs.
func waitUntil(t testing.TB, limit time.Duration, what string, cond func() bool, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s\n%s", limit, what, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterHarnessNetnsCurl: curl reaches a listener on 127.0.0.1
// inside the namespace and not the host's listener on the same address;
// the thread it used does not outlive the request.
func TestClusterHarnessNetnsCurl(t *testing.T) {
	t.Parallel()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		skipOrFail(t, fmt.Errorf("a listener inside the namespace needs busybox httpd (apt-get install busybox-static): %v", err))
	}
	ns := newNetns(t, "gsd-curl")

	// The same address twice: the host's 127.0.0.1:port answers "host",
	// the namespace's answers with a file of busybox httpd.
	port := freePort(t)
	hostLn, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	hostSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "host") })}
	go func() { _ = hostSrv.Serve(hostLn) }()
	t.Cleanup(func() { hostSrv.Close() })
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })

	www := t.TempDir()
	want := "netns " + randomHex(8)
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	httpd := exec.Command("nsenter", "--net="+ns.path(), "--", busybox, "httpd", "-f", "-p", fmt.Sprintf("127.0.0.1:%d", port), "-h", www)
	var httpdOut syncBuffer
	httpd.Stdout, httpd.Stderr = &httpdOut, &httpdOut
	if err := httpd.Start(); err != nil {
		t.Fatalf("start busybox httpd in %s: %v", ns.name, err)
	}
	t.Cleanup(func() { _ = httpd.Process.Kill(); _ = httpd.Wait() })

	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", port)
	var code int
	var body []byte
	waitUntil(t, 10*time.Second, "busybox httpd to answer in the namespace", func() bool {
		code, body, err = ns.get(url)
		return err == nil
	}, func() string { return fmt.Sprintf("%v; busybox httpd: %s", err, httpdOut.String()) })
	if code != http.StatusOK || string(body) != want {
		t.Errorf("GET %s in the namespace: %d %q, want 200 %q", url, code, body, want)
	}
	if code, body := ns.curl(t, fmt.Sprintf("http://localhost:%d/index.html", port)); code != http.StatusOK || string(body) != want {
		t.Errorf("GET localhost in the namespace: %d %q, want 200 %q", code, body, want)
	}
	// From the host, the same URL is the host's listener.
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s from the host: %v", url, err)
	}
	hostBody := make([]byte, 16)
	n, _ := resp.Body.Read(hostBody)
	resp.Body.Close()
	if string(hostBody[:n]) != "host" {
		t.Errorf("GET %s from the host: %q, want the host's listener", url, hostBody[:n])
	}
	// A port only the host listens on is refused in the namespace.
	otherURL := "http://" + other.Addr().String() + "/"
	if code, body, err := ns.get(otherURL); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("GET %s (a host listener) from the namespace: %d %q, %v; want connection refused", otherURL, code, body, err)
	}
	if _, _, err := ns.get("http://example.invalid/"); err == nil || !strings.Contains(err.Error(), "must be an IP address") {
		t.Errorf("GET by name: %v, want a refusal to resolve names", err)
	}
	// The threads that entered the namespace ended with their goroutines.
	var in []string
	waitUntil(t, 5*time.Second, "no thread of the test left in the namespace", func() bool {
		in, err = ns.threadsIn()
		if err != nil {
			t.Fatal(err)
		}
		return len(in) == 0
	}, func() string { return fmt.Sprintf("threads %v (pid %d)", in, os.Getpid()) })
}

// TestClusterHarness: three daemons in one namespace; a v2.2.3 server on
// the first, a worker on each of the others, created through the Docker
// API. The workers register over the shared loopback; the test reaches
// them there; the third daemon's host disappears (kill): its worker goes
// NOT_READY and, after the grace, the server reschedules its instances;
// the daemon comes back and so does the worker, as the same worker.
func TestClusterHarness(t *testing.T) {
	t.Parallel()
	needPostgres(t)
	began := time.Now()
	ref := repository + ":v2.2.3"
	c := startCluster(t, 3, []string{ref})
	server, h1, h2 := c.hosts[0], c.hosts[1], c.hosts[2]

	port := c.port()
	key := "gpustack_" + randomHex(8) + "_" + randomHex(16)
	knobs := []string{"GPUSTACK_EMULATOR_HEARTBEAT_INTERVAL=0.5", "GPUSTACK_WORKER_HEARTBEAT_GRACE_PERIOD=3", "GPUSTACK_MODEL_INSTANCE_RESCHEDULE_GRACE_PERIOD=3"}
	srv := runNode(t, server, "server", ref, append([]string{"GPUSTACK_EMULATOR_ADMIN_API_KEY=" + key}, knobs...), "--port", strconv.Itoa(port))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	srvLogs := func() string { return "server log:\n" + nodeLogs(server.cli, srv) }
	waitUntil(t, 60*time.Second, "the server's /healthz", func() bool {
		code, _, err := c.get(base + "/healthz")
		return err == nil && code == http.StatusOK
	}, srvLogs)
	t.Logf("the server answers %s after the start", time.Since(began).Round(time.Millisecond))
	token := strings.TrimSpace(execWith(t, server.cli, srv, "cat", "/var/lib/gpustack/token"))
	if token == "" {
		t.Fatal("the server's token file is empty")
	}

	names := []string{"w1", "w2"}
	ports := map[string]int{}
	nodes := map[string]string{}
	for i, h := range []*privateDaemon{h1, h2} {
		name := names[i]
		ports[name] = c.port()
		nodes[name] = runNode(t, h, name, ref, knobs, "--server-url", base, "--token", token,
			"--worker-port", strconv.Itoa(ports[name]), "--worker-name", name)
	}
	allLogs := func() string {
		return srvLogs() + "\nw1 log:\n" + nodeLogs(h1.cli, nodes["w1"]) + "\nw2 log:\n" + nodeLogs(h2.cli, nodes["w2"])
	}
	workers := func() map[string]clusterWorker {
		t.Helper()
		var ws []clusterWorker
		out := execWith(t, server.cli, srv, "gpustack", "emulator", "workers")
		if err := json.Unmarshal([]byte(out), &ws); err != nil {
			t.Fatalf("gpustack emulator workers: %v: %s", err, out)
		}
		byName := map[string]clusterWorker{}
		for _, w := range ws {
			byName[w.Name] = w
		}
		return byName
	}
	var ws map[string]clusterWorker
	waitUntil(t, 30*time.Second, "w1 and w2 READY at v2.2.3", func() bool {
		ws = workers()
		for _, n := range names {
			if w := ws[n]; w.State != "READY" || w.WorkerVersion == nil || *w.WorkerVersion != "v2.2.3" {
				return false
			}
		}
		return len(ws) == 2
	}, allLogs)
	t.Logf("both workers READY %s after the start", time.Since(began).Round(time.Millisecond))

	// Reached on the cluster's loopback, and only there.
	for _, n := range names {
		url := fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[n])
		if code, body := c.curl(t, url); code != http.StatusOK {
			t.Errorf("GET %s (%s): %d %s", url, n, code, body)
		}
		if _, err := (&http.Client{Timeout: 2 * time.Second}).Get(url); err == nil {
			t.Errorf("GET %s answered from the host's namespace; the cluster's loopback must be its own", url)
		}
	}
	if code, _ := c.curl(t, base+"/v2/workers"); code != http.StatusUnauthorized {
		t.Errorf("GET /v2/workers without the admin key: %d, want 401", code)
	}
	code, body := c.curl(t, base+"/v2/workers", "Authorization: Bearer "+key)
	var list struct {
		Items []clusterWorker `json:"items"`
	}
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil || len(list.Items) != 2 {
		t.Errorf("GET /v2/workers with the admin key: %d %v: %s; want 2 items", code, err, body)
	}

	// Two instances on w2, one on w1; then w2's host disappears.
	execWith(t, server.cli, srv, "gpustack", "emulator", "seed", "--models", "1", "--instances", "2", "--worker", "w2")
	execWith(t, server.cli, srv, "gpustack", "emulator", "seed", "--instances", "1", "--worker", "w1")
	w2 := ws["w2"]
	killed := time.Now()
	h2.kill(t)
	waitUntil(t, 20*time.Second, "w2 NOT_READY", func() bool { return workers()["w2"].State == "NOT_READY" }, srvLogs)
	notReady := time.Since(killed)
	if st := workers()["w1"].State; st != "READY" {
		t.Errorf("w1 is %s while w2's host is gone, want READY", st)
	}
	var dbg struct {
		Rescheduled int `json:"rescheduled"`
	}
	waitUntil(t, 20*time.Second, "the server to reschedule w2's 2 instances", func() bool {
		out := execWith(t, server.cli, srv, "gpustack", "emulator", "debug", "--port", strconv.Itoa(port))
		if err := json.Unmarshal([]byte(out), &dbg); err != nil {
			t.Fatalf("gpustack emulator debug: %v: %s", err, out)
		}
		return dbg.Rescheduled >= 2
	}, srvLogs)
	t.Logf("w2 NOT_READY %s after the kill, its instances rescheduled after %s", notReady.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	if notReady < 2*time.Second {
		t.Errorf("w2 NOT_READY %s after the kill, before the 3 s grace (less one 0.5 s heartbeat interval)", notReady)
	}
	if dbg.Rescheduled != 2 {
		t.Errorf("rescheduled %d instances, want w2's 2", dbg.Rescheduled)
	}
	var rows map[string]int64
	if err := json.Unmarshal([]byte(execWith(t, server.cli, srv, "gpustack", "emulator", "rows")), &rows); err != nil || rows["model_instances"] != 1 {
		t.Errorf("model_instances after the reschedule: %v (%v), want w1's 1", rows["model_instances"], err)
	}

	// The host comes back: its daemon restarts the worker, which is the
	// same worker (its identity is in its volume).
	restarted := time.Now()
	h2.start(t)
	waitUntil(t, 30*time.Second, "w2 READY again", func() bool { return workers()["w2"].State == "READY" }, allLogs)
	t.Logf("w2 READY %s after its daemon restarted", time.Since(restarted).Round(time.Millisecond))
	if again := workers()["w2"]; again.ID != w2.ID || again.WorkerUUID != w2.WorkerUUID {
		t.Errorf("w2 came back as %+v, was %+v", again, w2)
	}
	if code, _ := c.curl(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", ports["w2"])); code != http.StatusOK {
		t.Errorf("w2's /healthz after its host came back: %d", code)
	}
	t.Logf("total %s", time.Since(began).Round(time.Millisecond))
}
