package planner

import (
	"fmt"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

// versionChanges reports whether apply would run another image than the
// one whose container exists now (or start one where none exists).
func (b *builder) versionChanges() bool {
	ct := b.od.Container
	return ct == nil || ct.Labels[labelVersion] != b.d.ImageTag() || ct.Image != b.d.ImageRef()
}

func (b *builder) checkDatabase() {
	db := b.od.Database
	if b.d.ExternalDatabase() {
		b.checkExternal()
		return
	}
	if b.failedJump() {
		return
	}
	switch db.Status {
	case observe.DBAbsent:
		return
	case observe.DBUnknown:
		if b.versionChanges() {
			b.refuse(refuseUnreadable(db.Reason))
		} else {
			b.warn("the database could not be read", db.Reason)
		}
		return
	case observe.DBUnsupported:
		switch {
		case b.t.engine == catalog.EngineSQLite && db.Engine == catalog.EngineEmbeddedPostgres:
			b.refuse(refuseEraBack(b.d.ImageTag(), db.MigrationDone))
		case b.t.engine == catalog.EngineSQLite:
			b.refuse(refuseUnsupportedDatabase(b.d.ImageTag(), db.Reason+"; release "+b.d.ImageTag()+" uses SQLite and would start with an empty database"))
		case b.versionChanges():
			b.refuse(refuseUnsupportedDatabase(b.d.ImageTag(), db.Reason+"; without reading it, no verified backup can be taken before the image changes"))
		default:
			b.warn("the embedded PostgreSQL database is not inspected", db.Reason)
		}
		return
	}
	postgres := db.Engine == catalog.EngineEmbeddedPostgres
	switch {
	case !postgres && b.t.engine == catalog.EngineEmbeddedPostgres:
		b.checkJump()
		return
	case postgres && b.t.engine == catalog.EngineSQLite:
		b.refuse(refuseEraBack(b.d.ImageTag(), db.MigrationDone))
		return
	}
	b.checkRevision(db, postgres)
}

// checkRevision is the revision gate of a database that was read: stamped
// (or empty), a release revision, its probe passing, no traces of a
// half-applied next revision, not ahead of the target. postgres selects
// the #5774 repair for a missing model_usage_details.completed.
func (b *builder) checkRevision(db observe.Database, postgres bool) {
	if db.Revision == "" {
		if len(db.Tables) > 1 || (len(db.Tables) == 1 && db.Tables["alembic_version"] == nil) {
			b.refuse(refuseUnstamped(len(db.Tables)))
		}
		return
	}
	if dev, ok := b.cat.DevRevision(db.Revision); ok {
		b.refuse(refuseDevRevision(db.Revision, dev.Note))
		return
	}
	rev, ok := b.cat.Revision(db.Revision)
	if !ok {
		b.refuse(refuseUnknownRevision(db.Revision))
		return
	}
	if missing := rev.Probe().Check(db.Tables); len(missing) > 0 {
		if postgres && onlyCompletedMissing(missing) {
			b.refuse(refuseCompletedColumn(rev, missing, b.d.ContainerName, databasePort(b.d)))
		} else {
			b.refuse(refuseProbe(rev, missing))
		}
		return
	}
	if traces := b.cat.Traces(rev.ID, db.Tables); len(traces) > 0 {
		b.refuse(refusePartial(rev, traces))
		return
	}
	if b.t.head == "" {
		return
	}
	head, _ := b.cat.Revision(b.t.head)
	if rev.Index() > head.Index() {
		b.refuse(refuseAhead(rev, *b.t.release, b.releaseFor(rev)))
	}
}

// releaseFor names the newest final release whose head is rev, or the first
// that contains it.
func (b *builder) releaseFor(rev catalog.Revision) string {
	if cur, ok := b.cat.Release(b.out.Current.Release); ok && cur.Head == rev.ID {
		return cur.Tag
	}
	if rels := b.cat.ReleasesWithHead(rev.ID); len(rels) > 0 {
		return rels[len(rels)-1].Tag
	}
	if rel, ok := b.cat.FirstReleaseWith(rev.ID); ok {
		return rel.Tag
	}
	return rev.FirstTag
}

func refusePartial(rev catalog.Revision, traces []catalog.Missing) plan.Refusal {
	found := make([]string, len(traces))
	for i, t := range traces {
		found[i] = t.String()
	}
	return plan.Refusal{
		Code:    plan.RefusePartialMigration,
		Summary: fmt.Sprintf("the database is stamped %s but already has %s from the next revision", rev.ID, strings.Join(found, ", ")),
		Detail: "A migration half-applied and was not stamped (SQLite DDL is not transactional, #1084); " +
			"the next start fails with \"duplicate column name\" and the gap is never repaired.",
		Remedy: "Restore the backup taken before the failed upgrade (`gpustack-deploy backups`), " +
			"or redeploy with a fresh data volume keeping the model cache.",
	}
}

// planMigration adds the migrate action and the hazard warnings of the
// revisions it crosses. It reports whether the database will change.
func (b *builder) planMigration() bool {
	db := b.od.Database
	if b.d.ExternalDatabase() {
		return b.planExternalMigration()
	}
	if db.Status == observe.DBAbsent || (db.Status == observe.DBRead && db.Revision == "") {
		b.add(plan.Action{Kind: plan.ActionMigrate, Reason: plan.ReasonFreshDatabase, Subject: b.headOrUnknown(), To: b.t.head})
		return false
	}
	if db.Status != observe.DBRead {
		return false
	}
	if b.t.head == "" {
		if b.versionChanges() {
			b.add(plan.Action{Kind: plan.ActionMigrate, Reason: plan.ReasonImageChanges, Subject: "unknown", From: db.Revision, To: "unknown"})
			return true
		}
		return false
	}
	if db.Revision == b.t.head {
		return false
	}
	steps, err := b.cat.Crossed(db.Revision, b.t.head)
	if err != nil {
		return false
	}
	a := plan.Action{Kind: plan.ActionMigrate, Reason: plan.ReasonRevisionBehind, Subject: b.t.head, From: db.Revision, To: b.t.head}
	for _, r := range steps {
		a.Steps = append(a.Steps, plan.Step{Revision: r.ID, Message: r.Message, FirstTag: r.FirstTag})
	}
	b.hazardWarnings(steps)
	b.add(a)
	return true
}

// hazardWarnings warns about the revisions a migration crosses that
// delete rows or change the model cache.
func (b *builder) hazardWarnings(steps []catalog.Revision) {
	for _, r := range steps {
		if r.DeletesRows != "" {
			b.warn(fmt.Sprintf("revision %s deletes data", r.ID), r.DeletesRows)
		}
		if r.TouchesCache != "" {
			b.warn(fmt.Sprintf("revision %s changes the model cache", r.ID),
				r.TouchesCache+". Restoring only the database afterwards does not undo this.")
		}
	}
}

func (b *builder) headOrUnknown() string {
	if b.t.head == "" {
		return "unknown"
	}
	return b.t.head
}

// databasePort is the embedded PostgreSQL's port when the file moves it
// from 5432 (--database-port or GPUSTACK_DATABASE_PORT); "" otherwise.
func databasePort(d config.Deployment) string {
	for i, a := range d.Args {
		if v, ok := strings.CutPrefix(a.S, "--database-port="); ok {
			return v
		}
		if a.S == "--database-port" && i+1 < len(d.Args) {
			return d.Args[i+1].S
		}
	}
	return d.Env["GPUSTACK_DATABASE_PORT"].S
}
