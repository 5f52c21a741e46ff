package planner

import (
	"fmt"
	"sort"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// Grace periods of a GPUStack server (facts §7): a worker silent for
// heartbeatGrace becomes NOT_READY; rescheduleGrace later its model
// instances are deleted and rescheduled, unless it is in maintenance mode.
const (
	heartbeatGrace  = "150 s"
	rescheduleGrace = "300 s"
)

// planWorker plans a worker: its image, volumes and container, no
// database. serverToken is the digest of the token in its server's data
// volume ("" when not known, for example before the server's first start).
func planWorker(d config.Deployment, od *observe.Deployment, server *config.Deployment, serverToken string, cat *catalog.Catalog) plan.Deployment {
	b := &builder{d: d, od: od, cat: cat, t: resolveTarget(d, od, cat)}
	b.t.head = ""
	b.out = plan.Deployment{Name: d.Name, Host: d.Host, Tag: b.t.tag, Actions: []plan.Action{}, Role: plan.RoleWorker, Server: d.Server}
	b.describeStates()
	b.out.Current.Revision, b.out.Current.Database, b.out.Current.Engine = "", "", ""
	b.out.Target.Revision, b.out.Target.Engine = "", ""
	b.checkTag()
	b.checkContainerOwnership()
	if len(b.out.Refusals) > 0 {
		return b.out
	}
	desired := spec.For(d, "")
	b.planImage()
	b.planVolume(d.Data, od.Data)
	if d.Cache != nil {
		b.planVolume(*d.Cache, od.Cache)
	}
	if len(b.out.Refusals) > 0 {
		b.out.Actions = []plan.Action{}
		return b.out
	}
	container := b.containerAction(desired)
	if container == nil && serverToken != "" && od.TokenDigest != serverToken && od.Container != nil {
		container = &plan.Action{Kind: plan.ActionReplaceContainer, Reason: plan.ReasonTokenChanged, Subject: d.ContainerName,
			From: b.out.Current.Version, To: d.ImageTag()}
	}
	if container != nil {
		b.add(*container)
		b.add(plan.Action{Kind: plan.ActionVerify, Reason: plan.ReasonContainerChanges, Subject: d.ContainerName,
			Detail: "the worker answers /healthz and its server lists it READY"})
		b.out.Maintenance = server != nil && eraOf(*server, cat) == catalog.EngineEmbeddedPostgres && container.Kind != plan.ActionCreateContainer
	}
	switch {
	case container != nil && container.Kind == plan.ActionReplaceContainer:
		b.add(plan.Action{Kind: plan.ActionRemovePrevious, Reason: plan.ReasonKeptForRollback, Subject: d.ContainerName + observe.PreviousSuffix})
	case od.Previous != nil:
		b.add(plan.Action{Kind: plan.ActionRemovePrevious, Reason: plan.ReasonLeftover, Subject: od.Previous.Name})
	}
	b.workerWarnings(server, container)
	return b.out
}

// workerWarnings tell what the rollout of a worker costs.
func (b *builder) workerWarnings(server *config.Deployment, container *plan.Action) {
	if server == nil {
		return
	}
	if server.ImageTag() != b.d.ImageTag() {
		b.warn(fmt.Sprintf("worker runs %s, its server %s %s", b.d.ImageTag(), server.Name, server.ImageTag()),
			"GPUStack wants every worker on its server's version; v2.2+ workers log a version mismatch.")
	}
	if container == nil || container.Kind == plan.ActionCreateContainer {
		return
	}
	if eraOf(*server, b.cat) != catalog.EngineEmbeddedPostgres {
		b.warn("no maintenance mode before GPUStack v2: the worker is down while it is recreated",
			fmt.Sprintf("The server marks a worker silent for %s NOT_READY and reschedules its model instances %s later. Apply fails the worker, and puts its previous container back, when it is not healthy within %s of being stopped.",
				heartbeatGrace, rescheduleGrace, heartbeatGrace))
	}
}

// assignWaves numbers the waves of every server's rollout: its workers
// with changes, by host and name, max_parallel at a time. The plan lists
// each server, then its workers wave by wave.
func assignWaves(p *plan.Plan, desired *config.Desired) {
	byName := map[string]*plan.Deployment{}
	for i := range p.Deployments {
		byName[p.Deployments[i].Name] = &p.Deployments[i]
	}
	for _, s := range desired.Deployments {
		if s.IsWorker() {
			continue
		}
		n := 0
		for _, w := range desired.Workers(s.Name) {
			pw := byName[w.Name]
			if pw == nil || !pw.HasChanges() {
				continue
			}
			pw.Wave = n/max(s.MaxParallel, 1) + 1
			n++
		}
	}
	rank := map[string]int{}
	for i, d := range p.Deployments {
		if !d.IsWorker() {
			rank[d.Name] = i
		}
	}
	key := func(d plan.Deployment) (int, int, int) {
		if !d.IsWorker() {
			return rank[d.Name], 0, 0
		}
		r, ok := rank[d.Server]
		if !ok {
			r = len(p.Deployments)
		}
		return r, 1, d.Wave
	}
	sort.SliceStable(p.Deployments, func(i, j int) bool {
		a1, a2, a3 := key(p.Deployments[i])
		b1, b2, b3 := key(p.Deployments[j])
		switch {
		case a1 != b1:
			return a1 < b1
		case a2 != b2:
			return a2 < b2
		default:
			return a3 < b3
		}
	})
}

// eraOf is the database era of the release a deployment runs, as its
// plan resolves it (without an observation: a floating tag by its form).
func eraOf(d config.Deployment, cat *catalog.Catalog) catalog.Engine {
	return resolveTarget(d, &observe.Deployment{}, cat).engine
}
