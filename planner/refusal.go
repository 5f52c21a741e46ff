package planner

import (
	"fmt"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

func refuseDevTag(tag catalog.Tag, pin string) plan.Refusal {
	return plan.Refusal{
		Code:    plan.RefuseDevTag,
		Summary: fmt.Sprintf("%q is a development tag", tag.Raw),
		Detail: "Development images move with every push and stamp database revisions that no release knows; " +
			"GPUStack does not support upgrading from or to them (issues #582, #1572, #2602).",
		Remedy: fmt.Sprintf("Pin a release, e.g. version = %q. To run a dev image on purpose, set policy { allow_dev = true } and keep a backup.", pin),
	}
}

func refusePrerelease(tag catalog.Tag, final string) plan.Refusal {
	return plan.Refusal{
		Code:    plan.RefusePrereleaseTag,
		Summary: fmt.Sprintf("%q is a release candidate", tag.Raw),
		Detail:  "GPUStack's upgrade guide says not to upgrade from or to rc builds; their migrations were still edited before the final release.",
		Remedy:  fmt.Sprintf("Use the final release %s, or set policy { allow_prerelease = true }.", final),
	}
}

func refuseFloating(tag catalog.Tag, resolved, pin string) plan.Refusal {
	detail := "A floating tag points at whatever was pushed last; the same file can deploy different versions on different days, " +
		"and `latest` jumped from the v0.7 line to v2 without migrating v0.x data."
	if resolved != "" {
		detail += fmt.Sprintf(" The local image %s currently reports %s.", tag.Raw, resolved)
	}
	return plan.Refusal{
		Code:    plan.RefuseFloatingTag,
		Summary: fmt.Sprintf("%q is a floating tag", tag.Raw),
		Detail:  detail,
		Remedy:  fmt.Sprintf("Pin the exact release, e.g. version = %q, or set policy { allow_floating = true }.", pin),
	}
}

func refuseDowngrade(from, to string) plan.Refusal {
	return plan.Refusal{
		Code:    plan.RefuseDowngrade,
		Summary: fmt.Sprintf("going from %s back to %s is a downgrade", from, to),
		Detail:  "Both releases use the same database revision, but GPUStack does not support downgrades (#261).",
		Remedy:  fmt.Sprintf("Keep version = %q, or set policy { allow_downgrade = true } to go back anyway.", from),
	}
}

func refuseAhead(rev catalog.Revision, target catalog.Release, at string) plan.Refusal {
	return plan.Refusal{
		Code:    plan.RefuseDatabaseAhead,
		Summary: fmt.Sprintf("the database is at revision %s, newer than %s (head %s)", rev.ID, target.Tag, target.Head),
		Detail: fmt.Sprintf("Revision %s first shipped in %s. %s cannot open it: it fails with \"Can't locate revision identified by '%s'\" "+
			"or \"no such column\" (#261). Starting the old image does not undo a migration.", rev.ID, rev.FirstTag, target.Tag, rev.ID),
		Remedy: fmt.Sprintf("Set version = %q (a release that knows this database), or restore a backup taken before the upgrade "+
			"(list them with `gpustack-deploy backups`).", at),
	}
}

func refuseDevRevision(rev string, note string) plan.Refusal {
	return plan.Refusal{
		Code:    plan.RefuseDevRevision,
		Summary: fmt.Sprintf("the database is stamped with %s, a revision that only ever existed on development images", rev),
		Detail:  fmt.Sprintf("%s. No release can migrate from it: every release fails with \"Can't locate revision identified by '%s'\".", note, rev),
		Remedy: "Restore a backup taken before the development image ran (`gpustack-deploy backups`), " +
			"or redeploy with a fresh data volume; keep the model cache in its own volume so nothing is downloaded again.",
	}
}

func refuseUnknownRevision(rev string) plan.Refusal {
	return plan.Refusal{
		Code:    plan.RefuseUnknownRevision,
		Summary: fmt.Sprintf("the database is stamped with %s, a revision this catalog does not know", rev),
		Detail:  "It may come from a release newer than this binary, or from a development image.",
		Remedy: "If a newer release wrote it, add that release with a catalog { file = \"…\" } block or upgrade gpustack-deploy; " +
			"otherwise restore a backup taken before (`gpustack-deploy backups`).",
	}
}

func refuseProbe(rev catalog.Revision, missing []catalog.Missing) plan.Refusal {
	names := make([]string, len(missing))
	for i, m := range missing {
		names[i] = m.String()
	}
	return plan.Refusal{
		Code:    plan.RefuseProbeMismatch,
		Summary: fmt.Sprintf("the database is stamped %s but lacks %s", rev.ID, strings.Join(names, ", ")),
		Detail: fmt.Sprintf("A database stamped %s must have these; GPUStack will fail with \"no such column\". "+
			"This happens when a development image stamped the revision before its migration was complete, "+
			"or a migration half-applied (#1900, #1084). Releases never re-run a stamped revision.", rev.ID),
		Remedy: "Restore a backup taken before the failed upgrade (`gpustack-deploy doctor` names it), " +
			"or redeploy with a fresh data volume, keeping the model cache volume.",
	}
}

func refuseUnreadable(reason string) plan.Refusal {
	return plan.Refusal{
		Code:    plan.RefuseUnreadableDatabase,
		Summary: "the database in the data volume could not be read",
		Detail:  reason,
		Remedy:  "Check the data volume and run plan again; a version change is not applied to a database whose state is unknown.",
	}
}

func refuseUnmanaged(name string) plan.Refusal {
	return plan.Refusal{
		Code:    plan.RefuseUnmanagedContainer,
		Summary: fmt.Sprintf("a container named %s exists but was not created by gpustack-deploy", name),
		Detail:  "gpustack-deploy never changes or removes containers it does not own.",
		Remedy:  "Choose another container_name, or stop and rename that container yourself (docker rename) so its data can be reused.",
	}
}

func refuseImageUnavailable(ref string) plan.Refusal {
	return plan.Refusal{
		Code:    plan.RefuseImageUnavailable,
		Summary: fmt.Sprintf("image %s is not on the host and policy pull = \"never\"", ref),
		Detail:  "The container cannot be created without the image.",
		Remedy:  "Load the image on the host (docker load), or set policy { pull = \"missing\" }.",
	}
}

func refuseUnsupportedDatabase(target, reason string) plan.Refusal {
	return plan.Refusal{
		Code:    plan.RefuseUnsupportedDatabase,
		Summary: fmt.Sprintf("the data volume holds a database %s cannot use", target),
		Detail:  reason,
		Remedy:  "Point volume \"data\" at the volume this release wrote, or pin the release that wrote this data.",
	}
}

func refuseUnstamped(tables int) plan.Refusal {
	return plan.Refusal{
		Code:    plan.RefuseUnstampedDatabase,
		Summary: fmt.Sprintf("the database has %d tables but no Alembic revision", tables),
		Detail:  "GPUStack stamps alembic_version when it creates the database; without it no release knows how to migrate it.",
		Remedy:  "Restore a backup, or redeploy with a fresh data volume keeping the model cache.",
	}
}

// onlyCompletedMissing reports whether all a probe misses is
// model_usage_details(_archive).completed: the trace of a database created
// by v2.2.0rc1–rc3, whose migration gained the column in place at rc4 (#5774).
func onlyCompletedMissing(missing []catalog.Missing) bool {
	for _, m := range missing {
		if m.Column != "completed" || (m.Table != "model_usage_details" && m.Table != "model_usage_details_archive") {
			return false
		}
	}
	return len(missing) > 0
}

// refuseCompletedColumn is the probe refusal of #5774 with its known
// repair: GPUStack ships no migration that adds the column (facts §5).
func refuseCompletedColumn(rev catalog.Revision, missing []catalog.Missing, container, port string) plan.Refusal {
	r := refuseProbe(rev, missing)
	r.Detail = fmt.Sprintf("v2.2.0rc1 to rc3 created model_usage_details without the column completed; rc4 added it by editing the "+
		"already-released migration 8bf38a6bb3b5, so a database created by an rc is stamped %s without it and no release adds it. "+
		"GPUStack then fails every usage write (\"column \"completed\" of relation \"model_usage_details\" does not exist\", #5774, #5782, #5913): "+
		"usage is not recorded and PostgreSQL's log grows without bound.", rev.ID)
	var stmts []string
	for _, m := range missing {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS completed boolean NOT NULL DEFAULT false;", m.Table))
	}
	portFlag := ""
	if port != "" {
		portFlag = " -p " + port
	}
	r.Remedy = fmt.Sprintf("Add the column, as GPUStack's maintainers advise (#5774), while the container runs: docker exec %s psql -h 127.0.0.1%s -U root -d gpustack -c '%s' "+
		"Then run plan again.", container, portFlag, strings.Join(stmts, " "))
	return r
}
