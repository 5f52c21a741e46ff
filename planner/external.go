package planner

import (
	"fmt"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// An external database (database_url) is not in the data volume, and
// observe cannot read it: the plan has no revision gate. The revision it
// migrates from is the head of the release whose container runs now
// (the container's revision label), which is what the database is at if
// the last apply was verified. Downgrades are therefore judged on the
// releases alone.

// externalName describes the external database for the reader.
func (b *builder) externalName() string {
	return "external " + b.d.DatabaseScheme + " database"
}

// externalRead reports whether observe read the external database.
func (b *builder) externalRead() bool {
	return b.od.External != nil && b.od.External.Status == observe.DBRead
}

// expectedRevision is the revision an external database is at: read when
// observe could read it, otherwise the head the running container's
// release migrated it to; "" when unknown.
func (b *builder) expectedRevision() string {
	if b.externalRead() {
		return b.od.External.Revision
	}
	if ct := b.od.Container; ct != nil {
		if rev := ct.Labels[spec.LabelRevision]; rev != "" {
			if _, ok := b.cat.Revision(rev); ok {
				return rev
			}
		}
	}
	return ""
}

// checkExternal refuses what cannot be told or done with an external
// database: data left in the volume that database_url would abandon, and
// a target older than the database is expected to be.
func (b *builder) checkExternal() {
	db := b.od.Database
	b.out.Current.Database = b.externalName() + ", not read"
	b.out.Target.Database = b.externalName()
	if db.Status == observe.DBRead || db.Status == observe.DBUnsupported {
		engine := "a SQLite"
		if db.Engine == catalog.EngineEmbeddedPostgres {
			engine = "an embedded PostgreSQL"
		}
		remedy := "Remove database_url to keep using it, or move its data into the external database yourself and give the deployment a fresh data volume."
		if db.Engine != catalog.EngineEmbeddedPostgres && b.t.engine == catalog.EngineEmbeddedPostgres {
			remedy = "Remove database_url and apply: the data moves into v2's embedded PostgreSQL as a planned step. To use an external database, " +
				"run `gpustack migrate --migration-data-dir … --database-url …` yourself (facts: docs/migration.md) and then set database_url."
		}
		b.refuse(refuseJump(fmt.Sprintf("the data volume holds %s database, but database_url names an external one", engine),
			"GPUStack would start on the external database and leave the data in the volume unused; gpustack-deploy does not move data into an external database.",
			remedy))
		return
	}
	if b.externalRead() {
		ext := *b.od.External
		b.out.Current.Database = b.externalName() + ", read"
		b.out.Current.Revision = ext.Revision
		b.checkRevision(ext, b.d.DatabaseScheme == config.SchemePostgreSQL)
		return
	}
	if ext := b.od.External; ext != nil && b.versionChanges() {
		b.warn("the external database could not be read", ext.Reason+"; the plan expects it at the head of the running release, and apply checks the dump before the change.")
	}
	want := b.expectedRevision()
	if want == "" || b.t.head == "" || b.d.Policy.AllowDowngrade {
		return
	}
	rev, _ := b.cat.Revision(want)
	head, _ := b.cat.Revision(b.t.head)
	if rev.Index() > head.Index() {
		r := refuseAhead(rev, *b.t.release, b.releaseFor(rev))
		r.Summary = fmt.Sprintf("the external database was migrated to %s by the running release, newer than %s (head %s)", rev.ID, b.t.release.Tag, b.t.release.Head)
		b.refuse(r)
	}
}

// planExternalMigration adds the migrate action of an image change: from
// the revision expected of the running release, not read.
func (b *builder) planExternalMigration() bool {
	if !b.versionChanges() {
		return false
	}
	b.externalWarnings()
	from := b.expectedRevision()
	if from == b.t.head && from != "" {
		return false
	}
	a := plan.Action{Kind: plan.ActionMigrate, Reason: plan.ReasonExternalDatabase, Subject: b.headOrUnknown(), From: from, To: b.t.head}
	if b.externalRead() {
		a.Reason = plan.ReasonRevisionBehind
	}
	if from != "" && b.t.head != "" {
		if steps, err := b.cat.Crossed(from, b.t.head); err == nil {
			for _, r := range steps {
				a.Steps = append(a.Steps, plan.Step{Revision: r.ID, Message: r.Message, FirstTag: r.FirstTag})
			}
			b.hazardWarnings(steps)
		}
	}
	b.add(a)
	return true
}

// externalWarnings say, when the image changes, what the plan cannot
// check about an external database.
func (b *builder) externalWarnings() {
	detail := "gpustack-deploy does not read an external database while planning, so this plan has no revision gate: it cannot see whether the database is newer than " +
		"the target, stamped by a development image or half-migrated. The migration is expected from the head of the release that runs now, " +
		"and verify checks /healthz and /version only."
	if b.d.Backup.ToolImage != "" || b.d.Backup.ExternalAcknowledged {
		detail = "gpustack-deploy does not read an external database while planning: the migration is expected from the head of the release that runs now. " +
			"Apply checks it: the dump taken before the change must hold that revision (apply stops before any change otherwise), and after the start " +
			"verify reads the database (stamped with the target's head, schema probe)."
		if b.d.Backup.ExternalAcknowledged {
			// No tool_image: nothing to read the database with.
			detail = "gpustack-deploy does not read an external database, and with external = \"acknowledged\" it has no image to read it with: " +
				"the migration is expected from the head of the release that runs now, and verify checks /healthz and /version only."
		}
	}
	b.warn(fmt.Sprintf("no embedded database is started: GPUStack uses the %s named by database_url", b.externalName()), detail)
	if b.d.DatabaseScheme == config.SchemeMySQL {
		b.warn("MySQL can half-apply a migration",
			"MySQL DDL is not transactional: a failed upgrade can leave new columns without the revision stamp, and every later start fails with "+
				"\"Duplicate column name\" (#3202). Check alembic_version and the tables of revision "+b.headOrUnknown()+" after every upgrade "+
				"(`gpustack-deploy doctor` names what a failure logged); "+b.wayBack())
	}
}

// externalBackup is the dump of the external database before a change, or
// none when its owner backs it up (external = "acknowledged"), said loudly.
func (b *builder) externalBackup(reason plan.Reason) (plan.Action, bool) {
	if b.d.Backup.ExternalAcknowledged {
		b.warn(fmt.Sprintf("NO BACKUP: the %s is not backed up before the image changes", b.externalName()),
			"backup { external = \"acknowledged\" } says its owner backs it up. gpustack-deploy cannot undo a failed migration of it: "+
				"take a backup or snapshot of the database now, before apply.")
		return plan.Action{}, false
	}
	return plan.Action{Kind: plan.ActionBackupDatabase, Reason: reason, Subject: b.externalName(), From: b.expectedRevision(),
		Detail: b.d.Backup.Dir, Method: plan.MethodExternalDump}, true
}

// wayBack says how an external database returns to its state before apply.
func (b *builder) wayBack() string {
	if b.d.Backup.ExternalAcknowledged || !b.d.Backup.BeforeUpgrade {
		return "go back with your own backup of the database, never by starting the old image."
	}
	return "go back with the dump this plan takes, never by starting the old image."
}
