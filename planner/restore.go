package planner

import (
	"fmt"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// RestoreSource is the backup a restore brings back.
type RestoreSource struct {
	ID string
	// Version is the image tag that wrote the backed-up database ("v0.5.1-cpu").
	Version  string
	Revision string
}

// AtVersion returns d running the image tag version ("v0.5.1-cpu") instead
// of its own: the container a restore starts is the one the backup was
// taken from, whatever the file says now.
func AtVersion(d config.Deployment, version string) config.Deployment {
	tag := catalog.ClassifyTag(version)
	d.Version, d.Variant = tag.Base, tag.Variant
	return d
}

// PlanRestore computes the plan that puts backup src back into deployment
// d: a safety copy of the database as it is now, the restore, the container
// of the backup's version, and its verification. d is the deployment as the
// file declares it; the plan says when the file names another version.
func PlanRestore(d config.Deployment, od *observe.Deployment, src RestoreSource, cat *catalog.Catalog) plan.Deployment {
	declared := d.ImageTag()
	at := AtVersion(d, src.Version)
	b := &builder{d: at, od: od, cat: cat, t: resolveTarget(at, od, cat)}
	b.out = plan.Deployment{Name: d.Name, Host: d.Host, Tag: b.t.tag, Actions: []plan.Action{}}
	b.describeStates()
	b.checkContainerOwnership()
	b.checkRestoreTarget(src)
	if len(b.out.Refusals) > 0 {
		return b.out
	}
	b.planImage()
	if len(b.out.Refusals) > 0 {
		b.out.Actions = []plan.Action{}
		return b.out
	}
	if od.Data != nil && od.Database.Status != observe.DBAbsent {
		b.add(plan.Action{Kind: plan.ActionSafetyCopy, Reason: plan.ReasonBeforeOverwrite, Subject: d.Data.Source(), From: od.Database.Revision, Detail: d.Backup.Dir})
	}
	b.add(plan.Action{Kind: plan.ActionRestoreDatabase, Reason: plan.ReasonRestoreRequested, Subject: src.ID, From: od.Database.Revision, To: src.Revision, Detail: d.Data.Source()})
	container := plan.Action{Kind: plan.ActionCreateContainer, Reason: plan.ReasonBackupVersion, Subject: d.ContainerName, To: at.ImageTag()}
	if od.Container != nil {
		container.Kind, container.From = plan.ActionReplaceContainer, b.out.Current.Version
	}
	b.add(container)
	if b.t.head != "" && b.t.head != src.Revision {
		b.od = restoredView(od, src, b.t.engine)
		b.planMigration()
	}
	b.add(plan.Action{Kind: plan.ActionVerify, Reason: plan.ReasonContainerChanges, Subject: d.ContainerName, To: b.t.head})
	if od.Container != nil || od.Previous != nil {
		b.add(plan.Action{Kind: plan.ActionRemovePrevious, Reason: plan.ReasonKeptForRollback, Subject: d.ContainerName + observe.PreviousSuffix})
	}
	if declared != at.ImageTag() {
		b.warn(fmt.Sprintf("the file says %s, the backup was taken at %s", declared, at.ImageTag()),
			fmt.Sprintf("After the restore, write version = %q and variant = %q in the file, or the next plan will move to %s again.",
				at.Version, at.Variant, declared))
	}
	return b.out
}

// checkRestoreTarget refuses a backup the release it names cannot run.
func (b *builder) checkRestoreTarget(src RestoreSource) {
	rev, ok := b.cat.Revision(src.Revision)
	if !ok {
		b.refuse(plan.Refusal{
			Code:    plan.RefuseUnknownRevision,
			Summary: fmt.Sprintf("backup %s is at revision %s, which is not on the release chain", src.ID, src.Revision),
			Detail:  "No release can start on it.",
			Remedy:  "Choose a backup taken at a release (gpustack-deploy backups).",
		})
		return
	}
	if b.t.head == "" {
		return
	}
	head, _ := b.cat.Revision(b.t.head)
	if rev.Index() > head.Index() {
		b.refuse(plan.Refusal{
			Code:    plan.RefuseDatabaseAhead,
			Summary: fmt.Sprintf("backup %s is at revision %s, newer than %s can open", src.ID, src.Revision, src.Version),
			Detail:  "The manifest's version and revision disagree; the backup was not taken by a running " + src.Version + ".",
			Remedy:  "Choose another backup (gpustack-deploy backups).",
		})
	}
}

// restoredView is the observation as it will be once the backup is in the
// volume, so that the migration the restored version runs is planned. The
// database is of the era of the version the backup was taken at.
func restoredView(od *observe.Deployment, src RestoreSource, engine catalog.Engine) *observe.Deployment {
	v := *od
	v.Database = observe.Database{Status: observe.DBRead, Engine: engine, Revision: src.Revision}
	return &v
}
