package executor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// A server's workers are rolled out after the server, wave by wave (facts
// §6: the server first, then every worker on the same version). Before a
// wave's workers are stopped they are put in maintenance mode through the
// server's API, so that the server does not reschedule their model
// instances while they are down (facts §7); each is recreated with the same
// arguments, environment, volumes and token, and must answer /healthz and
// be listed by the server on the target version before maintenance is
// turned off. A failed worker goes back to its previous container alone; a
// failed wave stops the rollout.

// v0HeartbeatGrace is how long a v0.x server waits for a silent worker
// before it marks it NOT_READY; without maintenance mode a recreated
// worker must be healthy within it.
const v0HeartbeatGrace = 150 * time.Second

// clusterRun is what the workers of one server share during an apply.
type clusterRun struct {
	server config.Deployment
	// token is the registration token: the one the server's file sets,
	// else the one in its data volume.
	token string
	// api is the server's API; nil without credentials (v0.x servers).
	api ClusterAPI
}

// cluster prepares the rollout of server's workers: the token is read from
// the server's container and the API is the one workers register with.
func (x *Executor) cluster(ctx context.Context, server config.Deployment, serverURL string) (*clusterRun, error) {
	eng, ok := x.Engines[server.Host]
	if !ok {
		return nil, fmt.Errorf("no connection to docker host %q of server %s", server.Host, server.Name)
	}
	ct, err := eng.InspectContainer(ctx, server.ContainerName)
	if err != nil {
		return nil, err
	}
	if ct == nil {
		return nil, fmt.Errorf("server %s has no container %s on host %s: its workers cannot get its registration token", server.Name, server.ContainerName, server.Host)
	}
	token := ""
	if v, ok := server.RegistrationToken(); ok {
		// The server was started with --token: it may write no file.
		token = v.S
	} else if token, err = observe.ReadToken(ctx, eng, ct.ID); err != nil {
		return nil, fmt.Errorf("server %s: %w", server.Name, err)
	}
	return &clusterRun{server: server, token: token, api: x.clusterAPI(server, serverURL)}, nil
}

// clusterAPI is the API of server at url, or nil without credentials.
func (x *Executor) clusterAPI(server config.Deployment, url string) ClusterAPI {
	switch {
	case !server.HasAPICredentials():
		return nil
	case x.ClusterAPI != nil:
		return x.ClusterAPI(server, url)
	default:
		return NewClusterAPI(url, server.APIKey.S, server.AdminPassword.S)
	}
}

// applyWave recreates the workers of one wave at once. It returns their
// results in plan order and an error when any of them failed.
func (x *Executor) applyWave(ctx context.Context, c *clusterRun, ws []config.Deployment, pds []plan.Deployment) ([]Result, error) {
	msg := MaintenancePrefix + "upgrading to " + pds[0].Target.Version
	maint := make([]*APIWorker, len(pds))
	operators := make([]bool, len(pds))
	for i, pd := range pds {
		if !pd.Maintenance || c.api == nil {
			continue
		}
		w, ours, err := enterMaintenance(ctx, c.api, ws[i].WorkerName, msg)
		switch {
		case err != nil:
			x.endMaintenance(ctx, c, ws, maint, nil)
			return nil, fmt.Errorf("wave %d of %s: could not put worker %s in maintenance mode, so nothing of this wave was stopped: %w", pd.Wave, c.server.Name, ws[i].WorkerName, err)
		case w == nil:
			x.printf("%s: the server does not list worker %q; no maintenance mode to set", pd.Name, ws[i].WorkerName)
		case !ours:
			operators[i] = true
			x.printf("%s: in maintenance mode set by someone else (%q): it stays so, and is left so", pd.Name, w.MaintenanceMessage)
		default:
			maint[i] = w
			x.printf("%s: maintenance mode on (worker id %d): its model instances stay while it is recreated", pd.Name, w.ID)
		}
	}
	results := make([]Result, len(pds))
	errs := make([]error, len(pds))
	var wg sync.WaitGroup
	for i := range pds {
		eng, ok := x.Engines[pds[i].Host]
		if !ok {
			errs[i] = fmt.Errorf("no connection to docker host %q", pds[i].Host)
			results[i] = Result{Deployment: pds[i].Name, Failure: &Failure{Kind: FailAction, Message: errs[i].Error()}}
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], errs[i] = x.applyDeploymentWith(ctx, eng, ws[i], pds[i], func(r *run) {
				r.cluster, r.maintenance, r.operatorMaintenance = c, maint[i], operators[i]
			})
		}(i)
	}
	wg.Wait()
	x.endMaintenance(ctx, c, ws, maint, results)
	var failed []string
	var joined []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, pds[i].Name)
			joined = append(joined, fmt.Errorf("%s: %w", pds[i].Name, err))
		}
	}
	if len(failed) == 0 {
		return results, nil
	}
	return results, fmt.Errorf("rollout of %s stopped in wave %d (%s failed); the workers of later waves were not touched. Fix the cause and run apply again: it resumes with the workers not yet on the target: %w",
		c.server.Name, pds[0].Wave, strings.Join(failed, ", "), errors.Join(joined...))
}

// enterMaintenance puts the worker the server lists under name in
// maintenance mode with msg. It returns the worker (nil when not listed)
// and whether the maintenance mode is gpustack-deploy's: one set by
// anyone else (a message without MaintenancePrefix) is left as it is.
func enterMaintenance(ctx context.Context, api ClusterAPI, name, msg string) (*APIWorker, bool, error) {
	w, err := api.Worker(ctx, name)
	if err != nil || w == nil {
		return nil, false, err
	}
	if w.Maintenance && !strings.HasPrefix(w.MaintenanceMessage, MaintenancePrefix) {
		return w, false, nil
	}
	if err := api.SetMaintenance(ctx, w.ID, true, msg); err != nil {
		return nil, false, err
	}
	return w, true, nil
}

// endMaintenance takes out of maintenance every worker this wave put in
// it whose container runs verified or was put back; a worker in neither
// state (its host is gone, say) stays in maintenance so that its model
// instances are not rescheduled, and its result says so.
func (x *Executor) endMaintenance(ctx context.Context, c *clusterRun, ws []config.Deployment, maint []*APIWorker, results []Result) {
	ctx = context.WithoutCancel(ctx)
	for i, w := range maint {
		if w == nil {
			continue
		}
		if results != nil && results[i].Verified {
			continue // verify turned it off once the server listed it
		}
		if results != nil && !results[i].RolledBack && results[i].Failure != nil {
			results[i].Notes = append(results[i].Notes, fmt.Sprintf(
				"worker %s stays in maintenance mode so that its model instances are not rescheduled; once its host answers, run apply again (it resumes here and ends maintenance mode)", ws[i].WorkerName))
			continue
		}
		if err := c.api.SetMaintenance(ctx, w.ID, false, ""); err != nil {
			note := fmt.Sprintf("could not take worker %s out of maintenance mode: %v; turn it off in the server's UI", ws[i].WorkerName, err)
			if results != nil {
				results[i].Notes = append(results[i].Notes, note)
			}
			x.printf("%s: %s", ws[i].Name, note)
			continue
		}
		x.printf("%s: maintenance mode off", ws[i].Name)
	}
}

// verifyWorker waits for the recreated worker: /healthz on the worker
// port, then its server's listing. A worker in maintenance mode must show
// the target version (v2.2+ report it) before maintenance is turned off;
// then it must be READY.
func (r *run) verifyWorker(ctx context.Context) error {
	if err := r.findCurrent(ctx); err != nil {
		return err
	}
	timeout := r.d.Health.Timeout
	if r.cluster != nil && r.cluster.api == nil && timeout > v0HeartbeatGrace {
		// No maintenance mode: the server's heartbeat grace is the budget.
		timeout = v0HeartbeatGrace
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.waitHealthy(ctx, r.currentID); err != nil {
		return err
	}
	if r.cluster == nil || r.cluster.api == nil {
		return nil
	}
	api, name, want := r.cluster.api, r.d.WorkerName, strings.TrimPrefix(r.pd.Target.Version, "v")
	if r.operatorMaintenance {
		// It stays in the maintenance mode someone else set: it cannot be
		// READY, only listed on the target version.
		w, err := r.waitListed(ctx, api, name, func(w *APIWorker) bool {
			return w.WorkerVersion == "" || strings.TrimPrefix(w.WorkerVersion, "v") == want
		})
		if err != nil {
			return err
		}
		r.x.printf("%s: the server lists worker %s (id %d) %s%s, in the maintenance mode it had", r.d.Name, w.Name, w.ID, w.State, versionNote(w.WorkerVersion))
		return nil
	}
	if r.maintenance != nil {
		if _, err := r.waitListed(ctx, api, name, func(w *APIWorker) bool {
			return w.WorkerVersion == "" || strings.TrimPrefix(w.WorkerVersion, "v") == want
		}); err != nil {
			return err
		}
		if err := api.SetMaintenance(context.WithoutCancel(ctx), r.maintenance.ID, false, ""); err != nil {
			return &Failure{Kind: FailAction, Message: "take the worker out of maintenance mode: " + err.Error()}
		}
		r.x.printf("%s: maintenance mode off", r.d.Name)
	}
	w, err := r.waitListed(ctx, api, name, func(w *APIWorker) bool {
		return w.State == WorkerReady && (w.WorkerVersion == "" || strings.TrimPrefix(w.WorkerVersion, "v") == want)
	})
	if err != nil {
		return err
	}
	r.x.printf("%s: the server lists worker %s (id %d) %s%s", r.d.Name, w.Name, w.ID, w.State, versionNote(w.WorkerVersion))
	return nil
}

func versionNote(v string) string {
	if v == "" {
		return ""
	}
	return " at " + v
}

// waitListed polls the server's listing of worker name until ok holds.
func (r *run) waitListed(ctx context.Context, api ClusterAPI, name string, ok func(*APIWorker) bool) (*APIWorker, error) {
	tick := time.NewTicker(max(r.x.poll(), 250*time.Millisecond))
	defer tick.Stop()
	var last *APIWorker
	var lastErr error
	for {
		w, err := api.Worker(ctx, name)
		if errors.Is(err, errAPIKey) {
			return nil, &Failure{Kind: FailAction, Message: err.Error()}
		}
		last, lastErr = w, err
		if err == nil && w != nil && ok(w) {
			return w, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			why := "the server does not list it"
			switch {
			case lastErr != nil:
				why = lastErr.Error()
			case last != nil:
				why = fmt.Sprintf("the server lists it %s%s", last.State, versionNote(last.WorkerVersion))
			}
			return nil, &Failure{Kind: FailHealthTimeout, Message: fmt.Sprintf("worker %s answers /healthz but did not register as wanted (READY on %s) in time: %s", name, r.pd.Target.Version, why)}
		}
	}
}

// SettleMaintenance ends the maintenance mode an earlier apply left on a
// worker that now runs as planned (its host was gone, say, and is back):
// for every worker of the plan without changes whose /healthz answers, a
// maintenance mode whose message gpustack-deploy wrote is turned off. A
// maintenance mode the operator set is left alone.
func (x *Executor) SettleMaintenance(ctx context.Context, p *plan.Plan, desired *config.Desired) {
	apis := map[string]ClusterAPI{}
	for _, pd := range p.Deployments {
		if !pd.IsWorker() || pd.HasChanges() || len(pd.Refusals) > 0 {
			continue
		}
		w := desired.Deployment(pd.Name)
		server := desired.Deployment(pd.Server)
		if w == nil || server == nil || !server.HasAPICredentials() {
			continue
		}
		api, ok := apis[server.Name]
		if !ok {
			api = x.clusterAPI(*server, w.ServerURL)
			apis[server.Name] = api
		}
		listed, err := api.Worker(ctx, w.WorkerName)
		if err != nil || listed == nil || !listed.Maintenance || !strings.HasPrefix(listed.MaintenanceMessage, MaintenancePrefix) {
			continue
		}
		if observe.Probe(ctx, w.Health.Address, w.HealthPort(), 2*time.Second) != "ok" {
			x.printf("%s: stays in maintenance mode (set by an earlier apply): its /healthz does not answer", pd.Name)
			continue
		}
		if err := api.SetMaintenance(ctx, listed.ID, false, ""); err != nil {
			x.printf("%s: could not end the maintenance mode an earlier apply left on: %v", pd.Name, err)
			continue
		}
		x.printf("%s: maintenance mode off (an earlier apply left it on; the worker runs as planned)", pd.Name)
	}
}

// stopsServer reports whether a server's plan stops it: a backup taken
// with GPUStack stopped, a replace, a data migration, a restore.
func stopsServer(pd plan.Deployment) bool {
	for _, a := range pd.Actions {
		switch a.Kind {
		case plan.ActionBackupDatabase, plan.ActionReplaceContainer, plan.ActionMigrateData,
			plan.ActionSafetyCopy, plan.ActionRestoreDatabase, plan.ActionCopyCache, plan.ActionRemoveContainer:
			return true
		}
	}
	return false
}

// serverPause is the maintenance mode put on a server's workers while the
// server itself is down: its workers cannot send heartbeats then, and a
// server that comes back after a long migration would take them for
// silent and reschedule their model instances.
type serverPause struct {
	api ClusterAPI
	set map[string]int64 // worker name → id, those this apply put in maintenance
}

// pauseWorkers puts the workers of server that the running server lists
// in maintenance mode before the server is stopped. A server that does not
// answer is not an error: there is nothing to protect through it.
func (x *Executor) pauseWorkers(ctx context.Context, server config.Deployment, desired *config.Desired) *serverPause {
	if x.Config != nil {
		desired = x.Config
	}
	workers := desired.Workers(server.Name)
	if len(workers) == 0 || !server.HasAPICredentials() {
		return nil
	}
	p := &serverPause{set: map[string]int64{}, api: x.clusterAPI(server, workers[0].ServerURL)}
	var names []string
	for _, w := range workers {
		listed, ours, err := enterMaintenance(ctx, p.api, w.WorkerName, MaintenancePrefix+"server "+server.Name+" is upgraded")
		if err != nil {
			x.printf("%s: its workers are not (all) put in maintenance mode while it is down: %s: %v", server.Name, w.WorkerName, err)
			break
		}
		if !ours {
			continue
		}
		p.set[w.WorkerName] = listed.ID
		names = append(names, w.Name)
	}
	if len(names) > 0 {
		x.printf("%s: maintenance mode on for %s while the server is down: their model instances stay", server.Name, strings.Join(names, ", "))
	}
	return p
}

// resume ends the maintenance pauseWorkers set, once the server runs again
// (upgraded or put back). A server left down keeps them in maintenance.
func (x *Executor) resume(ctx context.Context, p *serverPause, server string, res *Result) {
	if p == nil || len(p.set) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if res != nil && !res.Verified && !res.RolledBack {
		res.Notes = append(res.Notes, "its workers stay in maintenance mode (their model instances are kept) until the server runs again and apply is run again")
		return
	}
	var names []string
	for name, id := range p.set {
		if err := p.api.SetMaintenance(ctx, id, false, ""); err != nil {
			x.printf("%s: could not take worker %s out of maintenance mode: %v", server, name, err)
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	x.printf("%s: maintenance mode off for %s: the server runs", server, strings.Join(names, ", "))
}
