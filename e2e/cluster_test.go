//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// The cluster scenarios: a GPUStack v2 server on one private engine and a
// worker on each of three others, all in one network namespace (one
// machine per engine, one loopback), driven by gpustack-deploy through
// host blocks. The server's records (its workers table, its count of
// rescheduled model instances) are read by exec in its container.

// The server's grace periods in these tests: a worker silent for
// clusterGrace is NOT_READY, and clusterGrace later its instances are
// rescheduled. workerDelay is how long a recreated worker stays silent:
// longer than both, so that a rollout without maintenance mode would
// reschedule its instances.
const (
	clusterGrace = 5 * time.Second
	workerDelay  = "12s"
)

// clusterSetup is a cluster with gpustack-deploy's file for it.
type clusterSetup struct {
	t   testing.TB
	c   *cluster
	d   *deployment
	key string // the admin API key (a sensitive variable)
	// password is the admin user's (GPUSTACK_BOOTSTRAP_PASSWORD); with
	// byPassword the file gives it to gpustack-deploy instead of the key.
	password   string
	byPassword bool
	// port is the server's; wports are the workers'.
	port   int
	wports []int
}

func newClusterSetup(t testing.TB, workers int) *clusterSetup {
	t.Helper()
	needPostgres(t)
	c := startCluster(t, workers+1, []string{repository + ":v2.1.2", repository + ":v2.2.3"})
	s := &clusterSetup{t: t, c: c, d: newDeployment(t, "cluster", options{variant: "none"}), key: "gpustack_" + randomHex(12),
		password: "pw-" + randomHex(8), port: c.port()}
	for range workers {
		s.wports = append(s.wports, c.port())
	}
	s.d.env = append(s.d.env, "GPUSTACK_DEPLOY_VAR_api_key="+s.key, "GPUSTACK_DEPLOY_VAR_admin_password="+s.password)
	s.write()
	return s
}

// write writes the file: host h0 (the server) and h1… (a worker each),
// two workers at a time.
func (s *clusterSetup) write() {
	var b strings.Builder
	fmt.Fprintf(&b, `variable "version" { default = "v2.1.2" }
variable "api_key" { sensitive = true }
variable "admin_password" { sensitive = true }
variable "delay" { default = "" }
variable "roll" { default = "1" }
variable "health_w2" { default = "" }
variable "timeout_w2" { default = "40s" }
`)
	for i, h := range s.c.hosts {
		fmt.Fprintf(&b, "\nhost \"h%d\" {\n  docker_host = %q\n  address     = \"127.0.0.1\" # one loopback: the engines share a namespace\n}\n", i, h.host())
	}
	credential := "api_key        = var.api_key"
	if s.byPassword {
		credential = "admin_password = var.admin_password"
	}
	fmt.Fprintf(&b, `
gpustack "srv" {
  host           = "h0"
  version        = var.version
  container_name = "gsd-cluster-srv"
  network_mode   = "host"
  container_port = %d
  %s
  env = {
    GPUSTACK_BOOTSTRAP_PASSWORD                     = var.admin_password
    GPUSTACK_EMULATOR_ADMIN_API_KEY                 = var.api_key
    GPUSTACK_EMULATOR_HEARTBEAT_INTERVAL            = "0.5"
    GPUSTACK_WORKER_HEARTBEAT_GRACE_PERIOD          = "%d"
    GPUSTACK_MODEL_INSTANCE_RESCHEDULE_GRACE_PERIOD = "%d"
  }
  volume "data" { name = "srv-data" }
  backup { dir = "./backups" }
  policy { pull = "never" }
  health { timeout = "60s" }
  rollout { max_parallel = 2 }
}
`, s.port, credential, int(clusterGrace.Seconds()), int(clusterGrace.Seconds()))
	for i, p := range s.wports {
		name := fmt.Sprintf("w%d", i+1)
		health, timeout := "", `"40s"`
		if name == "w2" {
			health, timeout = "\n    GPUSTACK_EMULATOR_HEALTH = var.health_w2", "var.timeout_w2"
		}
		fmt.Fprintf(&b, `
worker %q {
  host        = "h%d"
  server      = gpustack.srv
  worker_port = %d
  env = {
    GPUSTACK_EMULATOR_HEARTBEAT_INTERVAL = "0.5"
    GPUSTACK_EMULATOR_STARTUP_DELAY      = var.delay
    GSD_ROLL                             = var.roll%s
  }
  volume "data" { name = "%s-data" }
  policy { pull = "never" }
  health { timeout = %s }
}
`, name, i+1, p, health, name, timeout)
	}
	if err := os.WriteFile(s.d.file, []byte(b.String()), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *clusterSetup) gsd(args ...string) result {
	s.t.Helper()
	return s.c.run(s.d, append([]string{args[0], "-f", s.d.file}, args[1:]...)...)
}

func (s *clusterSetup) server() *client.Client { return s.c.hosts[0].cli }

// workers is the server's workers table, by name.
func (s *clusterSetup) workers() map[string]clusterWorker {
	s.t.Helper()
	var list []clusterWorker
	out := execWith(s.t, s.server(), "gsd-cluster-srv", "gpustack", "emulator", "workers")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		s.t.Fatalf("gpustack emulator workers: %v: %s", err, out)
	}
	byName := map[string]clusterWorker{}
	for _, w := range list {
		byName[w.Name] = w
	}
	return byName
}

// rescheduled is the server's count of model instances it deleted to
// reschedule them.
func (s *clusterSetup) rescheduled() int {
	s.t.Helper()
	out := execWith(s.t, s.server(), "gsd-cluster-srv", "gpustack", "emulator", "debug", "--port", fmt.Sprint(s.port))
	var info struct {
		Rescheduled *int `json:"rescheduled"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Rescheduled == nil {
		s.t.Fatalf("gpustack emulator debug: %v: %s", err, out)
	}
	return *info.Rescheduled
}

// instances counts the server's model instances per worker name.
func (s *clusterSetup) instances() map[string]int {
	s.t.Helper()
	out := execWith(s.t, s.server(), "gsd-cluster-srv", "gpustack", "emulator", "sql",
		"SELECT worker_name, count(*) AS n FROM model_instances GROUP BY worker_name")
	var rows []struct {
		WorkerName string `json:"worker_name"`
		N          int    `json:"n"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		s.t.Fatalf("count instances: %v: %s", err, out)
	}
	got := map[string]int{}
	for _, r := range rows {
		got[r.WorkerName] = r.N
	}
	return got
}

// workerContainer inspects worker name's container on its host.
func (s *clusterSetup) workerContainer(i int) container.InspectResponse {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("gpustack-w%d", i)
	info, err := s.c.hosts[i].cli.ContainerInspect(ctx, name)
	if err != nil {
		s.t.Fatalf("inspect %s: %v", name, err)
	}
	return info
}

func envOf(info container.InspectResponse, name string) string {
	for _, kv := range info.Config.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// expectWorkers checks that every worker is listed READY on version, out
// of maintenance.
func (s *clusterSetup) expectWorkers(version string, names ...string) map[string]clusterWorker {
	s.t.Helper()
	ws := s.workers()
	for _, n := range names {
		w, ok := ws[n]
		switch {
		case !ok:
			s.t.Errorf("the server does not list %s: %v", n, ws)
		case w.State != "READY":
			s.t.Errorf("%s is %s, want READY", n, w.State)
		case version != "" && (w.WorkerVersion == nil || *w.WorkerVersion != version):
			s.t.Errorf("%s reports version %v, want %s", n, w.WorkerVersion, version)
		case strings.Contains(string(w.Maintenance), `"enabled":true`):
			s.t.Errorf("%s is left in maintenance: %s", n, w.Maintenance)
		}
	}
	return ws
}

// expectNoSecret fails when the API key or the token shows in r.
func (s *clusterSetup) expectNoSecret(r result, token string) {
	s.t.Helper()
	for _, secret := range []string{s.key, s.password, token} {
		if secret != "" && strings.Contains(r.output(), secret) {
			s.t.Errorf("a secret shows in the output of gpustack-deploy")
		}
	}
}

// TestCluster: install a server and three workers on four engines; a
// no-op plan; an upgrade of all of them, the workers in two waves, slow
// enough that without maintenance mode the server would reschedule their
// model instances: none is. Then a worker that fails its health check
// goes back alone and stops the rollout, and the next apply resumes it.
// Then the host of a worker dies while its wave runs: the rollout stops,
// the worker stays in maintenance mode so that its instances are kept
// (none is rescheduled, well past the grace periods), the other worker of
// the wave is upgraded; once the host is back, apply again converges and
// ends the maintenance mode. Last, the control: a worker silent as long
// without maintenance mode has its instances rescheduled. The API is
// called with an admin API key first, then as the admin user (a login
// with admin_password).
func TestCluster(t *testing.T) {
	t.Parallel()
	s := newClusterSetup(t, 3)
	all := []string{"w1", "w2", "w3"}

	// Install: the server first, then the workers (two, then one).
	r := s.gsd("apply", "--auto-approve")
	expectCode(t, r, 0)
	expectOutput(t, r, `worker "w1" on host h1, joins srv, wave 1`, "wave 2 of srv's workers, at once: w3 on h3")
	s.expectWorkers("", all...) // v2.1.2 reports no version
	token := strings.TrimSpace(execWith(t, s.server(), "gsd-cluster-srv", "cat", "/var/lib/gpustack/token"))
	s.expectNoSecret(r, token)
	before := map[int]container.InspectResponse{}
	for i := 1; i <= 3; i++ {
		info := s.workerContainer(i)
		before[i] = info
		if envOf(info, "GPUSTACK_TOKEN") != token {
			t.Errorf("w%d was not given the server's token", i)
		}
	}
	ids := map[string]clusterWorker{}
	for n, w := range s.workers() {
		ids[n] = w
	}

	// No-op.
	r = s.gsd("plan", "--detailed-exitcode")
	expectCode(t, r, 0)
	expectOutput(t, r, "No changes.")

	// Model instances on every worker.
	for _, n := range all {
		execWith(t, s.server(), "gsd-cluster-srv", "gpustack", "emulator", "seed", "--models", "1", "--instances", "2", "--worker", n)
	}
	seeded := s.instances()

	// The upgrade: server, then w1+w2, then w3; each recreated worker is
	// silent for workerDelay, longer than both grace periods.
	began := time.Now()
	r = s.gsd("apply", "--auto-approve", "--var", "version=v2.2.3", "--var", "delay="+workerDelay)
	expectCode(t, r, 0)
	t.Logf("the upgrade took %s", time.Since(began).Round(time.Millisecond))
	s.expectNoSecret(r, token)
	out := r.output()
	for _, pair := range [][2]string{
		// While the server is down its workers cannot send heartbeats.
		{"srv: maintenance mode on for w1, w2, w3 while the server is down", "srv: * back up database"},
		{"srv: ? verify gsd-cluster-srv", "srv: maintenance mode off for w1, w2, w3: the server runs"},
		{"srv: maintenance mode off for w1, w2, w3", "w1: maintenance mode on"},
		{"w1: maintenance mode on", "w1: -/+ replace container"},
		{"w2: maintenance mode on", "w2: -/+ replace container"},
		{"w1: maintenance mode off", "w3: maintenance mode on"},
		{"w2: maintenance mode off", "w3: maintenance mode on"},
	} {
		a, b := strings.Index(out, pair[0]), strings.Index(out, pair[1])
		if a < 0 || b < 0 || a > b {
			t.Errorf("%q must come before %q", pair[0], pair[1])
		}
	}
	after := s.expectWorkers("v2.2.3", all...)
	for _, n := range all {
		if after[n].ID != ids[n].ID || after[n].WorkerUUID != ids[n].WorkerUUID {
			t.Errorf("%s changed identity: id %d uuid %s, was %d %s", n, after[n].ID, after[n].WorkerUUID, ids[n].ID, ids[n].WorkerUUID)
		}
	}
	for i := 1; i <= 3; i++ {
		info := s.workerContainer(i)
		if info.ID == before[i].ID || envOf(info, "GPUSTACK_TOKEN") != token || info.Config.Image != repository+":v2.2.3" {
			t.Errorf("w%d: want a new v2.2.3 container with the same token, got %s %s", i, info.ID, info.Config.Image)
		}
	}
	if n := s.rescheduled(); n != 0 {
		t.Errorf("the server rescheduled %d model instances during the upgrade, want 0", n)
	}
	if got := s.instances(); fmt.Sprint(got) != fmt.Sprint(seeded) {
		t.Errorf("model instances per worker: %v, were %v", got, seeded)
	}
	r = s.gsd("plan", "--detailed-exitcode", "--var", "version=v2.2.3", "--var", "delay="+workerDelay)
	expectCode(t, r, 0)

	// From here on gpustack-deploy logs in as the admin user instead of
	// using the API key.
	s.byPassword = true
	s.write()

	// A worker that fails its health check goes back alone: w1 and w2 are
	// wave 1, w2 fails, w1 stays upgraded, w3 is not touched. (w2's
	// previous container starts with the upgrade's 12s delay: the health
	// timeout of 20s covers its way back too.)
	w3 := s.workerContainer(3).ID
	r = s.gsd("apply", "--auto-approve", "--var", "version=v2.2.3", "--var", "roll=2", "--var", "health_w2=fail", "--var", "timeout_w2=20s")
	expectCode(t, r, 3)
	expectOutput(t, r, "rollout of srv stopped in wave 1 (w2 failed)", "w2: FAILED (health timeout), rolled back")
	s.expectNoSecret(r, token)
	if envOf(s.workerContainer(1), "GSD_ROLL") != "2" {
		t.Error("w1 was upgraded in the same wave and must stay so")
	}
	if info := s.workerContainer(2); envOf(info, "GSD_ROLL") != "1" || !info.State.Running {
		t.Errorf("w2 must run its previous container again: GSD_ROLL=%s running=%t", envOf(info, "GSD_ROLL"), info.State.Running)
	}
	if s.workerContainer(3).ID != w3 {
		t.Error("w3 is in wave 2 and must not be touched after wave 1 failed")
	}
	s.expectWorkers("v2.2.3", all...)

	// The next apply resumes: w2 and w3.
	r = s.gsd("apply", "--auto-approve", "--var", "version=v2.2.3", "--var", "roll=2")
	expectCode(t, r, 0)
	for i := 1; i <= 3; i++ {
		if envOf(s.workerContainer(i), "GSD_ROLL") != "2" {
			t.Errorf("w%d is not on the resumed rollout", i)
		}
	}
	s.expectWorkers("v2.2.3", all...)
	if n := s.rescheduled(); n != 0 {
		t.Errorf("the server rescheduled %d model instances, want 0", n)
	}

	// The host of w1 dies while wave 1 of the next rollout runs.
	w3 = s.workerContainer(3).ID
	rollout3 := []string{"--var", "version=v2.2.3", "--var", "roll=3", "--var", "delay=" + workerDelay}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := s.c.command(s.d, ctx, append([]string{"apply", "-f", s.d.file, "--auto-approve"}, rollout3...)...)
	var live syncBuffer
	cmd.Stdout, cmd.Stderr = &live, &live
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// w1's new container is created and silent for workerDelay: its host dies.
	waitUntil(t, 2*time.Minute, "w1's new container", func() bool { return strings.Contains(live.String(), "w1: ? verify gpustack-w1") }, live.String)
	s.c.hosts[1].kill(t)
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("apply still runs 2m after the host died:\n%s", live.String())
	}
	t.Logf("the apply with a dead host:\n%s", live.String())
	if code := cmd.ProcessState.ExitCode(); code != 4 {
		t.Errorf("apply exited %d, want 4 (w1 is changed and could not be put back)", code)
	}
	for _, want := range []string{"rollout of srv stopped in wave 1 (w1 failed)", "worker w1 stays in maintenance mode"} {
		if !strings.Contains(live.String(), want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	s.expectWorkers("v2.2.3", "w2")
	if w := s.workers()["w1"]; w.State != "MAINTENANCE" {
		t.Errorf("w1 is %s, want MAINTENANCE", w.State)
	}
	// Well past both grace periods, its instances are still there.
	time.Sleep(2*clusterGrace + 2*time.Second)
	if n := s.rescheduled(); n != 0 {
		t.Errorf("the server rescheduled %d instances of the worker whose host died, want 0", n)
	}
	if got := s.instances(); fmt.Sprint(got) != fmt.Sprint(seeded) {
		t.Errorf("model instances per worker: %v, were %v", got, seeded)
	}
	if s.workerContainer(3).ID != w3 {
		t.Error("w3 is in wave 2 and must not be touched after wave 1 failed")
	}

	// The host comes back: apply again converges and ends maintenance.
	s.c.hosts[1].start(t)
	r = s.gsd(append([]string{"apply", "--auto-approve"}, rollout3...)...)
	expectCode(t, r, 0)
	s.expectWorkers("v2.2.3", all...)
	if n := s.rescheduled(); n != 0 {
		t.Errorf("the server rescheduled %d instances, want 0", n)
	}
	r = s.gsd(append([]string{"plan", "--detailed-exitcode"}, rollout3...)...)
	expectCode(t, r, 0)

	// The control: the same silence without maintenance mode, by hand.
	if err := s.c.hosts[3].cli.ContainerStop(ctx, "gpustack-w3", container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 4*clusterGrace, "the server to reschedule w3's instances", func() bool { return s.rescheduled() > 0 }, func() string { return "" })
	t.Logf("control: w3 stopped without maintenance mode: the server rescheduled %d instances", s.rescheduled())
}
