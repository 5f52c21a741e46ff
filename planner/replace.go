package planner

import (
	"fmt"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// Option changes what Plan computes.
type Option func(*options)

type options struct {
	replaceData map[string]bool
}

// ReplaceData plans a fresh data volume for the named deployments
// (apply --replace): the last resort when a database is beyond repair.
func ReplaceData(deployments ...string) Option {
	return func(o *options) {
		if o.replaceData == nil {
			o.replaceData = map[string]bool{}
		}
		for _, d := range deployments {
			o.replaceData[d] = true
		}
	}
}

// planReplaceData plans a fresh redeploy: the database as it is is saved
// (verified when it can be, as found otherwise), the container is removed,
// the data volume is deleted and created empty, and GPUStack starts on it,
// creating its database and finding the model files in the cache volume,
// which is kept. Database refusals do not apply: that database is what is
// thrown away.
func planReplaceData(d config.Deployment, od *observe.Deployment, cat *catalog.Catalog) plan.Deployment {
	b := &builder{d: d, od: od, cat: cat, t: resolveTarget(d, od, cat)}
	b.out = plan.Deployment{Name: d.Name, Host: d.Host, Tag: b.t.tag, Actions: []plan.Action{}}
	b.describeStates()
	b.checkTag()
	b.checkContainerOwnership()
	b.checkReplaceable()
	if len(b.out.Refusals) > 0 {
		return b.out
	}
	b.planImage()
	if len(b.out.Refusals) > 0 {
		b.out.Actions = []plan.Action{}
		return b.out
	}
	if b.d.Cache != nil {
		b.planVolume(*b.d.Cache, b.od.Cache)
	}
	db := od.Database
	switch {
	case b.databaseVerifiable():
		b.add(plan.Action{Kind: plan.ActionBackupDatabase, Reason: plan.ReasonReplaceData, Subject: d.Data.Source(), From: db.Revision, Detail: d.Backup.Dir, Method: b.backupMethod()})
	case db.Status != observe.DBAbsent:
		b.add(plan.Action{Kind: plan.ActionSafetyCopy, Reason: plan.ReasonReplaceData, Subject: d.Data.Source(), From: db.Revision, Detail: d.Backup.Dir})
	}
	if od.Container != nil {
		b.add(plan.Action{Kind: plan.ActionRemoveContainer, Reason: plan.ReasonReplaceData, Subject: od.Container.Name})
	}
	if od.Previous != nil {
		b.add(plan.Action{Kind: plan.ActionRemoveContainer, Reason: plan.ReasonReplaceData, Subject: od.Previous.Name})
	}
	b.add(plan.Action{Kind: plan.ActionDeleteVolume, Reason: plan.ReasonReplaceData, Subject: d.Data.Name, Detail: od.DataUsage.String()})
	b.add(plan.Action{Kind: plan.ActionCreateVolume, Reason: plan.ReasonReplaceData, Subject: d.Data.Name})
	b.add(plan.Action{Kind: plan.ActionCreateContainer, Reason: plan.ReasonReplaceData, Subject: d.ContainerName, To: d.ImageTag()})
	b.add(plan.Action{Kind: plan.ActionMigrate, Reason: plan.ReasonFreshDatabase, Subject: b.headOrUnknown(), To: b.t.head})
	b.add(plan.Action{Kind: plan.ActionVerify, Reason: plan.ReasonContainerChanges, Subject: d.ContainerName, To: b.t.head})
	kept := "will be created"
	if od.CacheUsage != nil {
		kept = "is kept: " + od.CacheUsage.String()
	}
	b.warn(fmt.Sprintf("everything in volume %s is deleted (%s); the model cache %s %s", d.Data.Name, od.DataUsage, d.Cache.Source(), kept),
		"Users, API keys, model definitions and the worker token start from nothing; the model files stay, "+
			"so nothing is downloaded again. The database as it is now is kept under "+d.Backup.Dir+".")
	return b.out
}

// checkReplaceable refuses a fresh data volume where it cannot be done
// safely or shown exactly.
func (b *builder) checkReplaceable() {
	switch {
	case b.d.Data.Name == "":
		b.refuse(plan.Refusal{
			Code:    plan.RefuseReplaceUnsupported,
			Summary: fmt.Sprintf("the data volume is the host directory %s", b.d.Data.HostPath),
			Detail:  "gpustack-deploy deletes only Docker volumes it can name; it does not empty host directories.",
			Remedy:  "Move the directory aside yourself (after `gpustack-deploy backup`), then run apply.",
		})
	case b.od.Data == nil:
		b.refuse(plan.Refusal{
			Code:    plan.RefuseReplaceUnsupported,
			Summary: fmt.Sprintf("volume %s does not exist: there is nothing to replace", b.d.Data.Name),
			Remedy:  "Run apply without --replace.",
		})
	case b.d.Cache == nil || b.od.InlineCache != nil:
		b.refuse(plan.Refusal{
			Code:    plan.RefuseCacheNotSeparate,
			Summary: "the model cache lives inside the data volume and would be deleted with it",
			Detail:  "A fresh redeploy keeps the models only when the cache has a volume of its own.",
			Remedy: "Declare volume \"cache\" { name = \"…\" } and run apply without --replace first: it moves the cache " +
				"out of the data volume. Then replace the data volume.",
		})
	case b.od.DataUsage == nil:
		detail := b.od.UsageError
		if detail == "" {
			detail = "the volume was not measured"
		}
		b.refuse(plan.Refusal{
			Code:    plan.RefuseCannotMeasure,
			Summary: fmt.Sprintf("cannot show what volume %s holds before deleting it", b.d.Data.Name),
			Detail:  detail,
			Remedy:  "The deployment's image must be on the host and have /bin/sh (GPUStack's images do).",
		})
	}
}

// databaseVerifiable reports whether the database can be backed up with
// verification: read, stamped on the release chain, probe passing, no
// trace of a half-applied migration.
func (b *builder) databaseVerifiable() bool {
	db := b.od.Database
	if db.Status != observe.DBRead || db.Revision == "" {
		return false
	}
	rev, ok := b.cat.Revision(db.Revision)
	return ok && len(rev.Probe().Check(db.Tables)) == 0 && len(b.cat.Traces(db.Revision, db.Tables)) == 0
}

// PlanDestroy plans removing a deployment's containers. Volumes are deleted
// only when named in deleteVolumes (and confirmed by name when applied);
// backups are never touched.
func PlanDestroy(d config.Deployment, od *observe.Deployment, deleteVolumes []string) plan.Deployment {
	out := plan.Deployment{Name: d.Name, Host: d.Host, Actions: []plan.Action{}}
	if ct := od.Container; ct != nil {
		out.Current = plan.State{Version: ct.Labels[spec.LabelVersion], Image: ct.Image, Container: ct.Name + " (" + ct.State + ")"}
		if !ct.Managed {
			out.Refusals = append(out.Refusals, refuseUnmanaged(ct.Name))
			return out
		}
		out.Actions = append(out.Actions, plan.Action{Kind: plan.ActionRemoveContainer, Reason: plan.ReasonDestroy, Subject: ct.Name})
	}
	if od.Previous != nil {
		out.Actions = append(out.Actions, plan.Action{Kind: plan.ActionRemoveContainer, Reason: plan.ReasonDestroy, Subject: od.Previous.Name})
	}
	ours := map[string]*observe.Usage{}
	if d.Data.Name != "" && od.Data != nil {
		ours[d.Data.Name] = od.DataUsage
	}
	if d.Cache != nil && d.Cache.Name != "" && od.Cache != nil {
		ours[d.Cache.Name] = od.CacheUsage
	}
	for _, name := range deleteVolumes {
		usage, ok := ours[name]
		if !ok {
			out.Refusals = append(out.Refusals, plan.Refusal{
				Code:    plan.RefuseReplaceUnsupported,
				Summary: fmt.Sprintf("volume %s is not a volume of deployment %s on this host", name, d.Name),
				Remedy:  "Name the deployment's data or cache volume as the file declares it.",
			})
			continue
		}
		out.Actions = append(out.Actions, plan.Action{Kind: plan.ActionDeleteVolume, Reason: plan.ReasonDeleteRequested, Subject: name, Detail: usage.String()})
	}
	if len(out.Refusals) > 0 {
		out.Actions = []plan.Action{}
	}
	return out
}
