package planner

import (
	"fmt"

	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// planCacheSplit plans moving the model cache out of the data volume when
// the file gives it a volume of its own that the container does not mount
// yet (a deployment made with the documented one-liner, adopted by
// import). The copy is checked file by file before the container switches
// to it, and the old copy is removed only after the new container is
// verified, so an interruption at any point leaves one complete copy. It
// reports whether the split is planned.
func (b *builder) planCacheSplit(container *plan.Action) bool {
	if b.d.Cache == nil || observe.MountsAt(b.od.Container, b.d.Cache.Path) {
		return false
	}
	if b.od.UsageError != "" {
		b.refuse(plan.Refusal{
			Code:    plan.RefuseCannotMeasure,
			Summary: "cannot tell whether the data volume holds model files",
			Detail:  b.od.UsageError,
			Remedy: "The deployment's image must be on the host and have /bin/sh (GPUStack's images do); " +
				"pull it, or remove the cache volume from the file for now.",
		})
		return false
	}
	inline := b.od.InlineCache
	if inline == nil {
		return false
	}
	if container == nil {
		// The container mounts no cache but is otherwise as desired: that
		// cannot be, since the mounts are part of the configuration hash.
		return false
	}
	b.add(plan.Action{Kind: plan.ActionCopyCache, Reason: plan.ReasonCacheInData, Subject: b.d.Cache.Source(),
		From: b.d.Data.Source() + "/" + observe.CacheInData, Detail: inline.String()})
	b.warn(fmt.Sprintf("the model cache moves out of volume %s (%s)", b.d.Data.Source(), inline),
		"GPUStack is stopped while the files are copied; the copy is checked file by file (size and sha256) before the "+
			"new container uses it, and the old copy is removed only after the new container is verified.")
	return true
}
