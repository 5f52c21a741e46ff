package executor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

const (
	workerOld = "gpustack/gpustack:v2.1.2"
	workerNew = "gpustack/gpustack:v2.2.3"
)

// fakeCluster is a server's API over the fake engines of its workers: a
// worker is listed at the version of the container running on its host,
// READY while it runs and MAINTENANCE while maintenance is on. It checks
// the rollout's promises as they happen and records what it saw.
type fakeCluster struct {
	t       *testing.T
	mu      sync.Mutex
	hosts   map[string]*fakeEngine // by worker name
	ids     map[string]int64
	maint   map[int64]bool
	events  []string
	broken  []string
	waveOf  map[string]int
	ordered []string // worker names in plan order
}

func (c *fakeCluster) name(id int64) string {
	for n, i := range c.ids {
		if i == id {
			return n
		}
	}
	return ""
}

// running returns the image of the worker's running container, if any.
func (c *fakeCluster) running(name string) string {
	f := c.hosts[name]
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ct := range f.containers {
		if ct.ct.Name == "gpustack-"+name && ct.ct.State == "running" {
			return ct.ct.Image
		}
	}
	return ""
}

func (c *fakeCluster) Worker(_ context.Context, name string) (*APIWorker, error) {
	img := c.running(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.ids[name]
	if !ok {
		return nil, nil
	}
	w := &APIWorker{ID: id, Name: name, State: "NOT_READY", Maintenance: c.maint[id]}
	if img != "" {
		w.State, w.WorkerVersion = WorkerReady, strings.TrimPrefix(img, "gpustack/gpustack:")
	}
	if w.Maintenance {
		w.State = WorkerMaintenance
	}
	return w, nil
}

func (c *fakeCluster) SetMaintenance(_ context.Context, id int64, enabled bool, message string) error {
	name := c.name(id)
	img := c.running(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if enabled {
		c.events = append(c.events, "on "+name)
		if img != workerOld {
			c.broken = append(c.broken, fmt.Sprintf("maintenance on for %s while it runs %q, not its old container", name, img))
		}
		if !strings.HasPrefix(message, MaintenancePrefix) {
			c.broken = append(c.broken, "maintenance message "+message)
		}
		// Every worker of an earlier wave is done: upgraded or back, and
		// out of maintenance.
		for _, other := range c.ordered {
			if c.waveOf[other] < c.waveOf[name] && c.maint[c.ids[other]] {
				c.broken = append(c.broken, fmt.Sprintf("%s of wave %d is still in maintenance when wave %d starts", other, c.waveOf[other], c.waveOf[name]))
			}
		}
	} else {
		c.events = append(c.events, "off "+name)
	}
	c.maint[id] = enabled
	return nil
}

// rollout is a server with n workers on hosts of their own, each running
// v2.1.2, planned to v2.2.3 with maxParallel; fail names workers whose
// new container exits.
type rollout struct {
	x       *Executor
	out     *bytes.Buffer
	desired *config.Desired
	p       *plan.Plan
	api     *fakeCluster
	olds    map[string]string // old container id, by worker
}

func newRollout(t *testing.T, n, maxParallel int, fail ...string) *rollout {
	t.Helper()
	sf := newFakeEngine(t)
	server := config.Deployment{Name: "prod", Host: "s", Role: config.RoleServer, Version: "v2.2.3", Image: "gpustack/gpustack",
		ContainerName: "gpustack-prod", Port: sf.port(), ContainerPort: 80, ListenAddress: "127.0.0.1", MaxParallel: maxParallel,
		Data: config.Volume{Name: "prod-data", Path: spec.DataDir}, APIKey: config.Value{S: "admin-key", Sensitive: true},
		Health: config.Health{Timeout: 10 * time.Second, Address: "127.0.0.1"}, Restart: "unless-stopped"}
	data := sf.addVolume("prod-data")
	if err := os.WriteFile(filepath.Join(data, "token"), []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sf.addContainer(spec.For(server, ""), "running")
	r := &rollout{out: &bytes.Buffer{}, desired: &config.Desired{Deployments: []config.Deployment{server}}, olds: map[string]string{},
		api: &fakeCluster{t: t, hosts: map[string]*fakeEngine{}, ids: map[string]int64{}, maint: map[int64]bool{}, waveOf: map[string]int{}}}
	r.p = &plan.Plan{FormatVersion: plan.FormatVersion, Deployments: []plan.Deployment{{Name: "prod", Host: "s", Actions: []plan.Action{}}}}
	engines := map[string]Engine{"s": sf}
	exits := int64(1)
	for i := 1; i <= n; i++ {
		name, host := fmt.Sprintf("w%d", i), fmt.Sprintf("h%d", i)
		f := newFakeEngine(t)
		engines[host] = f
		w := config.Deployment{Name: name, Host: host, Role: config.RoleWorker, Server: "prod", ServerURL: "http://127.0.0.1:1",
			WorkerName: name, Version: "v2.2.3", Image: "gpustack/gpustack", ContainerName: "gpustack-" + name,
			NetworkMode: config.NetworkHost, ContainerPort: f.port(), Data: config.Volume{Name: name + "-data", Path: spec.DataDir},
			Health: config.Health{Timeout: 5 * time.Second, Address: "127.0.0.1"}, Restart: "unless-stopped"}
		old := w
		old.Version = "v2.1.2"
		f.addVolume(w.Data.Name)
		r.olds[name] = f.addContainer(spec.WithToken(spec.For(old, ""), "s3cret-token"), "running")
		f.behaviors[workerOld] = behavior{healthy: true, version: "v2.1.2"}
		f.containers[r.olds[name]].run = f.behaviors[workerOld]
		f.behaviors[workerNew] = behavior{healthy: true, version: "v2.2.3"}
		for _, x := range fail {
			if x == name {
				f.behaviors[workerNew] = behavior{exit: &exits, logs: []string{"Error running worker: boom"}}
			}
		}
		r.desired.Deployments = append(r.desired.Deployments, w)
		r.api.hosts[name], r.api.ids[name] = f, int64(100+i)
		wave := (i-1)/maxParallel + 1
		r.api.waveOf[name] = wave
		r.api.ordered = append(r.api.ordered, name)
		r.p.Deployments = append(r.p.Deployments, plan.Deployment{Name: name, Host: host, Role: plan.RoleWorker, Server: "prod", Wave: wave, Maintenance: true,
			Current: plan.State{Version: "v2.1.2"}, Target: plan.State{Version: "v2.2.3", Release: "v2.2.3"},
			Actions: []plan.Action{
				{Kind: plan.ActionReplaceContainer, Subject: w.ContainerName, From: "v2.1.2", To: "v2.2.3"},
				{Kind: plan.ActionVerify, Subject: w.ContainerName},
				{Kind: plan.ActionRemovePrevious, Subject: w.ContainerName + "-gsd-previous"},
			}})
	}
	r.x = &Executor{Engines: engines, Catalog: catalog.Default(), StateDir: t.TempDir(), Out: r.out,
		Now: func() time.Time { return now }, StopGrace: time.Second, PollInterval: 20 * time.Millisecond,
		ClusterAPI: func(config.Deployment, string) ClusterAPI { return r.api }}
	return r
}

func (r *rollout) apply(t *testing.T) ([]Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return r.x.Apply(ctx, r.p, r.desired)
}

// image returns the image of the container named gpustack-NAME on its host
// and whether it runs.
func (r *rollout) image(name string) (string, string) {
	f := r.api.hosts[name]
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.ct.Name == "gpustack-"+name {
			return c.ct.Image, c.ct.State
		}
	}
	return "", ""
}

func TestRolloutInWaves(t *testing.T) {
	r := newRollout(t, 3, 2)
	results, err := r.apply(t)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, r.out)
	}
	if len(results) != 3 {
		t.Fatalf("results = %+v", results)
	}
	for _, res := range results {
		if !res.Verified || res.Failure != nil {
			t.Errorf("%s: %+v", res.Deployment, res)
		}
	}
	for _, b := range r.api.broken {
		t.Error(b)
	}
	for _, name := range []string{"w1", "w2", "w3"} {
		img, state := r.image(name)
		if img != workerNew || state != "running" {
			t.Errorf("%s runs %s (%s), want %s running", name, img, state, workerNew)
		}
		f := r.api.hosts[name]
		f.mu.Lock()
		var env []string
		for _, c := range f.containers {
			if c.ct.Name == "gpustack-"+name {
				env = c.ct.Env
			}
		}
		f.mu.Unlock()
		if !contains(env, "GPUSTACK_TOKEN=s3cret-token") {
			t.Errorf("%s was recreated without the server's token: env %v", name, env)
		}
		if r.api.maint[r.api.ids[name]] {
			t.Errorf("%s is still in maintenance", name)
		}
	}
	// Wave 1 (w1, w2) is in maintenance together, and out of it before
	// wave 2 (w3) starts.
	ev := strings.Join(r.api.events, ", ")
	on3 := strings.Index(ev, "on w3")
	for _, e := range []string{"on w1", "on w2", "off w1", "off w2"} {
		if i := strings.Index(ev, e); i < 0 || i > on3 {
			t.Errorf("%q does not come before wave 2: %s", e, ev)
		}
	}
	if strings.Contains(r.out.String(), "s3cret-token") || strings.Contains(r.out.String(), "admin-key") {
		t.Errorf("a secret was printed:\n%s", r.out)
	}
}

func TestRolloutFailedWorkerGoesBackAlone(t *testing.T) {
	r := newRollout(t, 4, 2, "w2")
	results, err := r.apply(t)
	if err == nil || !strings.Contains(err.Error(), "rollout of prod stopped in wave 1 (w2 failed)") {
		t.Fatalf("want the rollout stopped in wave 1 by w2, got %v\n%s", err, r.out)
	}
	if len(results) != 2 {
		t.Fatalf("results of wave 1 only, got %+v", results)
	}
	if !results[0].Verified {
		t.Errorf("w1 upgrades in the same wave: %+v", results[0])
	}
	if !results[1].RolledBack || results[1].Failure == nil || results[1].Failure.Kind != FailExited {
		t.Errorf("w2 goes back to its previous container: %+v", results[1])
	}
	for name, want := range map[string]string{"w1": workerNew, "w2": workerOld, "w3": workerOld, "w4": workerOld} {
		if img, state := r.image(name); img != want || state != "running" {
			t.Errorf("%s runs %s (%s), want %s running", name, img, state, want)
		}
	}
	// w2 runs its old container again: the same one, on the same volume.
	f := r.api.hosts["w2"]
	if c := f.byRef("gpustack-w2"); c == nil || c.ct.ID != r.olds["w2"] {
		t.Errorf("w2 must run its previous container %s again", r.olds["w2"])
	}
	for _, name := range []string{"w1", "w2", "w3", "w4"} {
		if r.api.maint[r.api.ids[name]] {
			t.Errorf("%s is left in maintenance", name)
		}
	}
	if ev := strings.Join(r.api.events, ", "); strings.Contains(ev, "w3") || strings.Contains(ev, "w4") {
		t.Errorf("wave 2 must not start after a failed wave: %s", ev)
	}
	for _, b := range r.api.broken {
		t.Error(b)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestSettleMaintenanceLeftByAnEarlierApply(t *testing.T) {
	r := newRollout(t, 2, 1)
	// Both workers run as planned; w1 was left in maintenance by an apply
	// whose host vanished, w2 by the operator.
	for i := range r.p.Deployments[1:] {
		pd := &r.p.Deployments[i+1]
		pd.Actions, pd.Wave = []plan.Action{}, 0
	}
	r.api.maint[r.api.ids["w1"]], r.api.maint[r.api.ids["w2"]] = true, true
	messages := map[string]string{"w1": MaintenancePrefix + "upgrading to v2.2.3", "w2": "disk swap, back at 5"}
	r.x.ClusterAPI = func(config.Deployment, string) ClusterAPI { return messageCluster{r.api, messages} }
	if _, err := r.apply(t); err != nil {
		t.Fatal(err)
	}
	if r.api.maint[r.api.ids["w1"]] {
		t.Errorf("w1 runs as planned: the maintenance an earlier apply left must end\n%s", r.out)
	}
	if !r.api.maint[r.api.ids["w2"]] {
		t.Error("w2's maintenance was set by the operator and must stay")
	}
}

// messageCluster is fakeCluster with a maintenance message per worker.
type messageCluster struct {
	*fakeCluster
	messages map[string]string
}

func (c messageCluster) Worker(ctx context.Context, name string) (*APIWorker, error) {
	w, err := c.fakeCluster.Worker(ctx, name)
	if w != nil && w.Maintenance {
		w.MaintenanceMessage = c.messages[name]
	}
	return w, err
}

// TestServerDownPausesItsWorkers: a plan that stops the server (here its
// removal, the server alone as with --target) puts the server's workers,
// found in the whole configuration, in maintenance mode first; a server
// left down keeps them so, and says so.
func TestServerDownPausesItsWorkers(t *testing.T) {
	r := newRollout(t, 2, 1)
	server := r.desired.Deployments[0]
	r.x.Config = r.desired
	p := &plan.Plan{FormatVersion: plan.FormatVersion, Deployments: []plan.Deployment{{Name: "prod", Host: "s",
		Actions: []plan.Action{{Kind: plan.ActionRemoveContainer, Subject: server.ContainerName}}}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	results, err := r.x.Apply(ctx, p, &config.Desired{Deployments: []config.Deployment{server}})
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, r.out)
	}
	if ev := strings.Join(r.api.events, ", "); ev != "on w1, on w2" {
		t.Errorf("maintenance events %q, want both workers on before the server stops", ev)
	}
	if !r.api.maint[r.api.ids["w1"]] || !r.api.maint[r.api.ids["w2"]] {
		t.Error("the server is gone: its workers stay in maintenance mode")
	}
	if len(results) != 1 || len(results[0].Notes) == 0 || !strings.Contains(strings.Join(results[0].Notes, " "), "stay in maintenance mode") {
		t.Errorf("the result must say the workers stay in maintenance: %+v", results)
	}
}

// TestRolloutKeepsTheOperatorsMaintenance: a worker the operator put in
// maintenance mode is upgraded in its wave and stays in that maintenance
// mode; the other worker's, set by the rollout, ends.
func TestRolloutKeepsTheOperatorsMaintenance(t *testing.T) {
	r := newRollout(t, 2, 2)
	r.api.maint[r.api.ids["w1"]] = true
	messages := map[string]string{"w1": "disk swap, back at 5"}
	r.x.ClusterAPI = func(config.Deployment, string) ClusterAPI { return messageCluster{r.api, messages} }
	results, err := r.apply(t)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, r.out)
	}
	for _, res := range results {
		if !res.Verified {
			t.Errorf("%s: %+v", res.Deployment, res)
		}
	}
	for _, name := range []string{"w1", "w2"} {
		if img, _ := r.image(name); img != workerNew {
			t.Errorf("%s runs %s, want %s", name, img, workerNew)
		}
	}
	if !r.api.maint[r.api.ids["w1"]] {
		t.Errorf("the operator's maintenance mode of w1 was ended\n%s", r.out)
	}
	if r.api.maint[r.api.ids["w2"]] {
		t.Error("w2 is left in the rollout's maintenance mode")
	}
	if ev := strings.Join(r.api.events, ", "); strings.Contains(ev, "w1") {
		t.Errorf("w1's maintenance mode was touched: %s", ev)
	}
}
