package planner

import (
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

const labelVersion = spec.LabelVersion

// planActions lists the actions in the order apply runs them. A refused
// deployment gets none: nothing of it will be applied.
func (b *builder) planActions() {
	if len(b.out.Refusals) > 0 {
		return
	}
	if b.jump {
		b.planJump()
		return
	}
	desired := spec.For(b.d, b.t.head)
	b.planImage()
	b.planVolume(b.d.Data, b.od.Data)
	if b.d.Cache != nil {
		b.planVolume(*b.d.Cache, b.od.Cache)
	}
	if len(b.out.Refusals) > 0 {
		b.out.Actions = []plan.Action{}
		return
	}
	container := b.containerAction(desired)
	backupAt := len(b.out.Actions)
	split := b.planCacheSplit(container)
	if len(b.out.Refusals) > 0 {
		b.out.Actions = []plan.Action{}
		return
	}
	migrates := false
	if container != nil {
		b.add(*container)
		migrates = b.planMigration()
		verify := plan.Action{Kind: plan.ActionVerify, Reason: plan.ReasonContainerChanges, Subject: b.d.ContainerName, To: b.t.head}
		if b.d.ExternalDatabase() {
			// Revision and probe are read from the data volume; an
			// external database is not.
			verify.To = ""
		}
		b.add(verify)
	}
	if backup, ok := b.backupBeforeChange(container, migrates); ok {
		b.out.Actions = append(b.out.Actions[:backupAt], append([]plan.Action{backup}, b.out.Actions[backupAt:]...)...)
	}
	switch {
	case container != nil && container.Kind == plan.ActionReplaceContainer:
		// The replaced container is kept aside until the new one is verified.
		b.add(plan.Action{Kind: plan.ActionRemovePrevious, Reason: plan.ReasonKeptForRollback, Subject: b.d.ContainerName + observe.PreviousSuffix})
	case b.od.Previous != nil:
		if container != nil || b.od.Container.Health == "ok" {
			b.add(plan.Action{Kind: plan.ActionRemovePrevious, Reason: plan.ReasonLeftover, Subject: b.od.Previous.Name})
		} else {
			b.warn("a container kept aside by an interrupted apply remains: "+b.od.Previous.Name,
				"It is kept until the current container is verified healthy.")
		}
	}
	if split {
		b.add(plan.Action{Kind: plan.ActionRemoveOldCache, Reason: plan.ReasonCacheCopied, Subject: b.d.Data.Source(),
			Detail: b.od.InlineCache.String()})
	}
	if container == nil && b.od.Container != nil && b.od.Container.Health != "" && b.od.Container.Health != "ok" {
		b.warn("the container runs but /healthz answers "+b.od.Container.Health, "")
	}
}

// backupBeforeChange is the backup taken before a container change that
// runs another image or migrates, if one is due.
func (b *builder) backupBeforeChange(container *plan.Action, migrates bool) (plan.Action, bool) {
	db := b.od.Database
	if !b.d.Backup.BeforeUpgrade || container == nil || !(migrates || b.versionChanges()) {
		return plan.Action{}, false
	}
	reason := plan.ReasonImageChanges
	if migrates && b.t.head != "" {
		reason = plan.ReasonRevisionBehind
	}
	if b.d.ExternalDatabase() {
		// Whether it is behind is not known: it is not read.
		return b.externalBackup(plan.ReasonImageChanges)
	}
	if db.Status != observe.DBRead || db.Revision == "" {
		return plan.Action{}, false
	}
	return plan.Action{Kind: plan.ActionBackupDatabase, Reason: reason, Subject: b.d.Data.Source(), From: db.Revision,
		Detail: b.d.Backup.Dir, Method: b.backupMethod()}, true
}

func (b *builder) planImage() {
	ref := b.d.ImageRef()
	switch {
	case b.d.Policy.Pull == config.PullAlways:
		b.add(plan.Action{Kind: plan.ActionPullImage, Reason: plan.ReasonPullAlways, Subject: ref})
	case b.od.Image != nil:
	case b.d.Policy.Pull == config.PullNever:
		b.refuse(refuseImageUnavailable(ref))
	default:
		b.add(plan.Action{Kind: plan.ActionPullImage, Reason: plan.ReasonImageMissing, Subject: ref})
	}
}

func (b *builder) planVolume(v config.Volume, seen *observe.Volume) {
	// Host directories are created by the engine when the container is.
	if v.Name == "" || seen != nil {
		return
	}
	b.add(plan.Action{Kind: plan.ActionCreateVolume, Reason: plan.ReasonVolumeMissing, Subject: v.Name})
}

// containerAction decides whether the container must be created, replaced
// or started; nil when it is as desired and running.
func (b *builder) containerAction(desired spec.Container) *plan.Action {
	ct := b.od.Container
	if ct == nil {
		reason := plan.ReasonNewDeployment
		if b.od.Database.Status == observe.DBRead {
			reason = plan.ReasonContainerMissing
		}
		return &plan.Action{Kind: plan.ActionCreateContainer, Reason: reason, Subject: b.d.ContainerName, To: b.d.ImageTag()}
	}
	// Apply creates containers without a restart policy and sets the desired
	// one after verification: a container at the desired configuration
	// without it was left by an apply interrupted before verifying it.
	if ct.Labels[spec.LabelConfigHash] == desired.Hash() && ct.Restart == "no" && desired.Restart != "no" {
		return &plan.Action{Kind: plan.ActionStartContainer, Reason: plan.ReasonUnverified, Subject: b.d.ContainerName, Detail: ct.State}
	}
	if ct.Labels[spec.LabelConfigHash] != desired.Hash() || ct.Restart != desired.Restart {
		a := &plan.Action{Kind: plan.ActionReplaceContainer, Subject: b.d.ContainerName, From: b.out.Current.Version, To: b.d.ImageTag()}
		if ct.Labels[labelVersion] != b.d.ImageTag() {
			a.Reason = plan.ReasonVersionChanged
		} else {
			a.Reason, a.Detail = plan.ReasonConfigChanged, strings.Join(drift(desired, ct), ", ")
		}
		return a
	}
	if !ct.Running() {
		return &plan.Action{Kind: plan.ActionStartContainer, Reason: plan.ReasonContainerStopped, Subject: b.d.ContainerName, Detail: ct.State}
	}
	return nil
}
