package planner

import (
	"fmt"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/planner/plantest"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// cluster is a v2 server "prod" at version with n workers w1…wn on hosts
// h1…hn, and max_parallel.
func cluster(version string, n, maxParallel int) *config.Desired {
	s := plantest.V2Deployment(version)
	s.MaxParallel = maxParallel
	s.APIKey = config.Value{S: "key", Sensitive: true}
	d := &config.Desired{Deployments: []config.Deployment{s}}
	for i := 1; i <= n; i++ {
		d.Deployments = append(d.Deployments, worker(s, fmt.Sprintf("w%d", i), fmt.Sprintf("h%d", i)))
	}
	return d
}

func worker(s config.Deployment, name, host string) config.Deployment {
	w := s
	w.Name, w.Host, w.Role, w.Server = name, host, config.RoleWorker, s.Name
	w.ContainerName, w.WorkerName = "gpustack-"+name, name
	w.ServerURL = "http://10.0.0.1:80"
	w.NetworkMode, w.Port, w.ListenAddress, w.ContainerPort = config.NetworkHost, 0, "", config.DefaultWorkerPort
	w.Args, w.Env = nil, nil
	w.Data = config.Volume{Name: "gpustack-" + name + "-data", Path: spec.DataDir}
	w.Cache = nil
	w.APIKey, w.MaxParallel, w.Backup = config.Value{}, 0, config.BackupPolicy{}
	w.VersionFollowsServer = true
	return w
}

// workerRunning is a worker container created from w with token.
func workerRunning(t *testing.T, w config.Deployment, token string) *observe.Deployment {
	od := plantest.Running(t, w, catalogHead(t, w.Version))
	od.Database = observe.Database{Status: observe.DBAbsent}
	od.Container.Ports = nil
	od.Container.Labels = spec.For(w, "").Labels
	od.TokenDigest = spec.TokenDigest(token)
	return od
}

func planCluster(t *testing.T, d *config.Desired, obs map[string]*observe.Deployment) *plan.Plan {
	t.Helper()
	p, err := Plan(d, &observe.Observed{Deployments: obs}, catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWorkersFreshCluster(t *testing.T) {
	d := cluster("v2.2.3", 2, 1)
	obs := map[string]*observe.Deployment{}
	for _, x := range d.Deployments {
		obs[x.Name] = plantest.Absent(x)
	}
	p := planCluster(t, d, obs)
	want := `prod@default:
  pull image gpustack/gpustack:v2.2.3 [the image is not on the host]
  create volume gpustack-prod-data [the volume does not exist]
  create volume gpustack-prod-cache [the volume does not exist]
  create container gpustack-prod ( -> v2.2.3) [the deployment has no container yet]
  migrate database c4d7e8f9a0b1 ( -> c4d7e8f9a0b1) [GPUStack creates the database at its first start]
  verify gpustack-prod ( -> c4d7e8f9a0b1) [a new container must prove it works]
w1@h1: worker of prod wave 1
  pull image gpustack/gpustack:v2.2.3 [the image is not on the host]
  create volume gpustack-w1-data [the volume does not exist]
  create container gpustack-w1 ( -> v2.2.3) [the deployment has no container yet]
  verify gpustack-w1 [a new container must prove it works: the worker answers /healthz and its server lists it READY]
w2@h2: worker of prod wave 2
  pull image gpustack/gpustack:v2.2.3 [the image is not on the host]
  create volume gpustack-w2-data [the volume does not exist]
  create container gpustack-w2 ( -> v2.2.3) [the deployment has no container yet]
  verify gpustack-w2 [a new container must prove it works: the worker answers /healthz and its server lists it READY]
`
	if got := p.String(); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
}

func TestWorkersUpgradeInWaves(t *testing.T) {
	old := cluster("v2.1.2", 5, 2)
	d := cluster("v2.2.3", 5, 2)
	obs := map[string]*observe.Deployment{}
	srv := plantest.Running(t, old.Deployments[0], catalogHead(t, "v2.1.2"))
	srv.Database = plantest.PostgresDatabase(t, catalogHead(t, "v2.1.2"))
	srv.TokenDigest = spec.TokenDigest("tok")
	obs["prod"] = srv
	for _, w := range old.Deployments[1:] {
		obs[w.Name] = workerRunning(t, w, "tok")
	}
	p := planCluster(t, d, obs)
	var got []string
	for _, pd := range p.Deployments {
		got = append(got, fmt.Sprintf("%s/%d/%t", pd.Name, pd.Wave, pd.Maintenance))
		if pd.IsWorker() {
			if _, ok := pd.Action(plan.ActionBackupDatabase); ok {
				t.Errorf("%s: a worker has no database to back up", pd.Name)
			}
			if a, ok := pd.Action(plan.ActionReplaceContainer); !ok || a.Reason != plan.ReasonVersionChanged {
				t.Errorf("%s: want a replace for the version, got %v", pd.Name, pd.Actions)
			}
		}
	}
	want := "[prod/0/false w1/1/true w2/1/true w3/2/true w4/2/true w5/3/true]"
	if fmt.Sprint(got) != want {
		t.Errorf("order, waves, maintenance = %v, want %s", got, want)
	}
	if _, ok := p.Deployments[0].Action(plan.ActionBackupDatabase); !ok {
		t.Errorf("the server is backed up before its upgrade: %v", p.Deployments[0].Actions)
	}
}

func TestWorkerTokenAndNoOp(t *testing.T) {
	d := cluster("v2.2.3", 2, 1)
	obs := map[string]*observe.Deployment{}
	srv := plantest.Running(t, d.Deployments[0], catalogHead(t, "v2.2.3"))
	srv.Database = plantest.PostgresDatabase(t, catalogHead(t, "v2.2.3"))
	srv.TokenDigest = spec.TokenDigest("new-token")
	obs["prod"] = srv
	obs["w1"] = workerRunning(t, d.Deployments[1], "new-token")
	obs["w2"] = workerRunning(t, d.Deployments[2], "old-token")
	p := planCluster(t, d, obs)
	if p.Deployments[1].HasChanges() {
		t.Errorf("w1 holds the server's token and its configuration: no change, got %v", p.Deployments[1].Actions)
	}
	w2 := p.Deployments[2]
	if a, ok := w2.Action(plan.ActionReplaceContainer); !ok || a.Reason != plan.ReasonTokenChanged || w2.Wave != 1 {
		t.Errorf("w2 was created with another token: want a replace in wave 1, got wave %d %v", w2.Wave, w2.Actions)
	}
}

func TestV0WorkerWarnsWithoutMaintenance(t *testing.T) {
	s := plantest.Deployment("v0.7.1", "cpu")
	s.Cache = nil
	old, w := worker(s, "w1", "h1"), worker(s, "w1", "h1")
	old.Version = "v0.6.0"
	d := &config.Desired{Deployments: []config.Deployment{s, w}}
	obs := map[string]*observe.Deployment{"prod": plantest.Running(t, s, catalogHead(t, "v0.7.1")), "w1": workerRunning(t, old, "")}
	p := planCluster(t, d, obs)
	pw := p.Deployments[1]
	if pw.Maintenance {
		t.Error("v0.x has no maintenance mode")
	}
	if len(pw.Warnings) == 0 || pw.Warnings[0].Summary != "no maintenance mode before GPUStack v2: the worker is down while it is recreated" {
		t.Errorf("warnings = %v", pw.Warnings)
	}
}

func catalogHead(t *testing.T, version string) string {
	r, ok := catalog.Default().Release(version)
	if !ok {
		t.Fatalf("no release %s", version)
	}
	return r.Head
}
