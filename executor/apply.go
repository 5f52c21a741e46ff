package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// run is the state of one deployment's apply.
type run struct {
	x   *Executor
	eng Engine
	d   config.Deployment
	pd  plan.Deployment
	j   *Journal
	res *Result

	backup   *backup.Manifest // taken by this apply: the rollback target
	restored *backup.Manifest // written into the volume by a restore
	// inheritedBackup is the backup an interrupted apply took before its
	// change: the rollback target when this run takes none of its own.
	inheritedBackup string
	previousID      string // the container kept aside by a replace
	stoppedID       string // the container stopped for the backup
	currentID       string // the container created or started by this apply
	started         bool   // currentID was started by this apply
	// volumeReplaced is set once the data volume was deleted: there is no
	// going back to the old container then, only to the saved database.
	volumeReplaced bool
	// migrating makes createContainer start v2 with the data-migration
	// switch (ActionMigrateData).
	migrating bool
	// cluster is, for a worker, its server's token and API.
	cluster *clusterRun
	// maintenance is, for a worker, the server's record of it when this
	// apply put it in maintenance mode.
	maintenance *APIWorker
	// operatorMaintenance is set for a worker already in a maintenance
	// mode gpustack-deploy did not set: it is left on.
	operatorMaintenance bool
}

func (x *Executor) applyDeployment(ctx context.Context, eng Engine, d config.Deployment, pd plan.Deployment) (Result, error) {
	return x.applyDeploymentWith(ctx, eng, d, pd, nil)
}

// applyDeploymentWith is applyDeployment with setup run on the run before
// its first action (a worker's cluster).
func (x *Executor) applyDeploymentWith(ctx context.Context, eng Engine, d config.Deployment, pd plan.Deployment, setup func(*run)) (res Result, err error) {
	res = Result{Deployment: d.Name, Worker: d.IsWorker()}
	start := time.Now()
	defer func() { res.Took = time.Since(start) }()
	lock, err := AcquireLock(x.StateDir, d.Name, x.now())
	if err != nil {
		return res, err
	}
	defer lock.Release()
	if lock.Stale != "" {
		res.Notes = append(res.Notes, lock.Stale)
		x.printf("%s: %s", d.Name, lock.Stale)
	}
	j, interrupted, err := OpenJournal(x.StateDir, d.Name, x.now)
	if err != nil {
		return res, err
	}
	defer j.Close()
	r := &run{x: x, eng: eng, d: d, pd: pd, j: j, res: &res}
	if setup != nil {
		setup(r)
	}
	if err := r.confirmDeletions(ctx); err != nil {
		res.Failure = &Failure{Kind: FailAction, Message: err.Error()}
		return res, err
	}
	if interrupted != nil {
		note := "the previous apply was interrupted (" + interrupted.Where + "); this run continues from what the engine shows now"
		res.Notes = append(res.Notes, note)
		x.printf("%s: %s", d.Name, note)
		r.inheritedBackup = interrupted.Backup
	}
	j.Begin(pd)
	err = r.actions(ctx)
	if err == nil && r.backup != nil {
		r.prune()
	}
	j.End(err)
	return res, err
}

// prune applies the retention policy once the apply succeeded, still
// under the lock: nothing is pruned while an apply is in flight, and the
// newest backup of the revision now deployed is always kept.
func (r *run) prune() {
	store, err := backup.Open(r.d.Backup.Dir, r.d.Name)
	if err != nil {
		r.res.Notes = append(r.res.Notes, "retention not applied: "+err.Error())
		return
	}
	deployed := r.pd.Target.Revision
	if deployed == "" {
		deployed = r.backup.Revision
	}
	removed, err := store.Prune(r.d.Backup.Keep, deployed)
	if err != nil {
		r.res.Notes = append(r.res.Notes, "retention: "+err.Error())
	}
	for _, id := range removed {
		r.x.printf("%s: removed backup %s (backup.keep = %d)", r.d.Name, id, r.d.Backup.Keep)
	}
}

func (r *run) actions(ctx context.Context) error {
	for i, a := range r.pd.Actions {
		r.x.printf("%s: %s %s %s", r.d.Name, a.Kind.Symbol(), a.Kind, a.Subject)
		r.j.Step(i, a, "started", "")
		err := r.action(ctx, a)
		if err != nil {
			r.j.Step(i, a, "failed", err.Error())
			return r.fail(ctx, a, err)
		}
		r.j.Step(i, a, "done", r.res.Backup)
	}
	return nil
}

func (r *run) action(ctx context.Context, a plan.Action) error {
	switch a.Kind {
	case plan.ActionPullImage:
		return r.eng.PullImage(ctx, a.Subject, lockedOut{r.x}, r.x.TTY)
	case plan.ActionCreateVolume:
		return r.createVolume(ctx, a.Subject)
	case plan.ActionBackupDatabase:
		return r.backupDatabase(ctx, a)
	case plan.ActionCreateContainer:
		return r.createContainer(ctx)
	case plan.ActionReplaceContainer:
		return r.replaceContainer(ctx)
	case plan.ActionStartContainer:
		return r.startExisting(ctx)
	case plan.ActionMigrate:
		// GPUStack migrates when it starts; Verify checks the result.
		return nil
	case plan.ActionVerify:
		verify := r.verify
		if r.d.IsWorker() {
			verify = r.verifyWorker
		}
		if err := verify(ctx); err != nil {
			return err
		}
		r.res.Verified = true
		return r.eng.SetRestartPolicy(ctx, r.currentID, r.d.Restart)
	case plan.ActionRemovePrevious:
		return r.removePrevious(ctx)
	case plan.ActionSafetyCopy:
		return r.safetyCopy(ctx, a)
	case plan.ActionRestoreDatabase:
		return r.restoreDatabase(ctx, a)
	case plan.ActionRemoveContainer:
		return r.removeContainer(ctx, a.Subject)
	case plan.ActionDeleteVolume:
		return r.deleteVolume(ctx, a)
	case plan.ActionCopyCache:
		return r.copyCache(ctx, a)
	case plan.ActionRemoveOldCache:
		return r.removeOldCache(ctx)
	case plan.ActionMigrateData:
		return r.migrateData(ctx, a)
	default:
		return fmt.Errorf("unknown action %d", int(a.Kind))
	}
}

func (r *run) createVolume(ctx context.Context, name string) error {
	role := spec.RoleData
	if r.d.Cache != nil && r.d.Cache.Name == name {
		role = spec.RoleCache
	}
	return r.eng.CreateVolume(ctx, name, map[string]string{spec.LabelDeployment: r.d.Name, spec.LabelRole: role})
}

// createContainer creates and starts the container. Until it is verified
// it runs without a restart policy: a GPUStack whose migration failed exits
// 0, and the engine would otherwise start it again and again on the damaged
// database. A container kept aside by an interrupted replace becomes the
// one to go back to.
func (r *run) createContainer(ctx context.Context) error {
	if err := r.adoptAside(ctx); err != nil {
		return err
	}
	s := spec.For(r.d, r.pd.Target.Revision)
	if r.migrating {
		s = spec.WithDataMigration(s, strings.HasPrefix(r.pd.Target.Release, "v2.0.0"))
	}
	if r.d.IsWorker() {
		if r.cluster == nil {
			return errors.New("a worker is created only in its server's rollout")
		}
		s = spec.WithToken(s, r.cluster.token)
	}
	s.Restart = "no"
	id, err := r.eng.CreateContainer(ctx, s)
	if err != nil {
		return err
	}
	r.currentID, r.started = id, true
	return r.eng.StartContainer(ctx, id)
}

// replaceContainer stops the old container, keeps it aside under another
// name so that a failed upgrade can return to it, and starts the new one.
func (r *run) replaceContainer(ctx context.Context) error {
	old, err := r.eng.InspectContainer(ctx, r.d.ContainerName)
	if err != nil {
		return err
	}
	if old == nil {
		return r.createContainer(ctx)
	}
	if err := r.eng.StopContainer(ctx, old.ID, r.x.grace()); err != nil {
		return err
	}
	if r.started && old.ID == r.currentID && r.previousID != "" {
		// This run's own container (the one that migrated the data) gives
		// way; the container kept aside before it stays the one to go
		// back to, whatever the restart policy.
		if err := r.eng.RemoveContainer(ctx, old.ID); err != nil {
			return err
		}
		r.currentID = ""
		return r.createContainer(ctx)
	}
	aside := r.d.ContainerName + observe.PreviousSuffix
	stale, err := r.eng.InspectContainer(ctx, aside)
	if err != nil {
		return err
	}
	if stale != nil && stale.ID != old.ID && r.ours(stale) {
		if r.unverified(old) {
			// The current container never passed verification; the one
			// kept aside is the last that did. Keep it to go back to.
			if err := r.eng.RemoveContainer(ctx, old.ID); err != nil {
				return err
			}
			r.previousID = stale.ID
			return r.createContainer(ctx)
		}
		// The current container was verified after the one kept aside.
		if err := r.eng.RemoveContainer(ctx, stale.ID); err != nil {
			return err
		}
	}
	if err := r.eng.RenameContainer(ctx, old.ID, aside); err != nil {
		return err
	}
	r.previousID = old.ID
	return r.createContainer(ctx)
}

func (r *run) startExisting(ctx context.Context) error {
	ct, err := r.eng.InspectContainer(ctx, r.d.ContainerName)
	if err != nil {
		return err
	}
	if ct == nil {
		return errors.New("the container disappeared after planning; run plan again")
	}
	r.currentID, r.started = ct.ID, true
	if err := r.adoptAside(ctx); err != nil {
		return err
	}
	if ct.Running() && ct.ID != r.stoppedID {
		return nil
	}
	return r.eng.StartContainer(ctx, ct.ID)
}

// adoptAside makes a container kept aside by an interrupted replace the one
// to go back to.
func (r *run) adoptAside(ctx context.Context) error {
	if r.previousID != "" {
		return nil
	}
	aside, err := r.eng.InspectContainer(ctx, r.d.ContainerName+observe.PreviousSuffix)
	if err != nil {
		return err
	}
	if aside != nil && r.ours(aside) {
		r.previousID = aside.ID
	}
	return nil
}

// unverified reports whether ct was started by an apply that never
// verified it: apply creates containers without a restart policy and sets
// the desired one only once they pass verification.
func (r *run) unverified(ct *engine.Container) bool {
	return ct.Restart == "no" && r.d.Restart != "no"
}

func (r *run) removePrevious(ctx context.Context) error {
	aside := r.d.ContainerName + observe.PreviousSuffix
	ct, err := r.eng.InspectContainer(ctx, aside)
	if err != nil || ct == nil {
		return err
	}
	if !r.ours(ct) {
		return fmt.Errorf("container %s is not ours; left in place", aside)
	}
	return r.eng.RemoveContainer(ctx, ct.ID)
}

// ours reports whether a container belongs to this deployment.
func (r *run) ours(ct *engine.Container) bool {
	return ct.Labels[spec.LabelDeployment] == r.d.Name || (r.x.Adopted != nil && r.x.Adopted[r.d.Name] == ct.ID)
}
