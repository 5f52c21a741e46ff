package planner

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-version"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// The v0.x → v2 jump: a data volume holding SQLite data and a v2 target.
// v2 copies the SQLite database into its embedded PostgreSQL once, at the
// first start with GPUSTACK_DATA_MIGRATION set, and never again once its
// done-file exists (#3575). The plan takes the only backup that can undo
// it (the whole volume), lets the executor run and prove that one start,
// and recreates the container without the switch.

// Environment switches of the data migration (spec.EnvDataMigration and
// spec.EnvMigrationDataDir).
const (
	envDataMigration    = "GPUSTACK_DATA_MIGRATION"
	envMigrationDataDir = "GPUSTACK_MIGRATION_DATA_DIR"
)

var v200 = version.Must(version.NewVersion("2.0.0"))

// checkJump refuses a jump that cannot be made safely; otherwise it marks
// the builder so that planActions plans it.
func (b *builder) checkJump() {
	db := b.od.Database
	if b.t.release == nil {
		b.refuse(refuseJump(fmt.Sprintf("%s is not a release this catalog knows, so the v0.x → v2 data migration cannot be planned", b.d.ImageTag()),
			"The migration copies the SQLite rows into PostgreSQL and then upgrades them to the target's head; without a known release "+
				"neither the head nor the proof of the copy is known.",
			fmt.Sprintf("Pin a v2 release, e.g. version = %q.", b.latestV2())))
		return
	}
	if b.t.release.Version().Core().Equal(v200) {
		b.refuse(refuseJump(fmt.Sprintf("GPUStack %s cannot be the target of the v0.x → v2 data migration", b.t.release.Tag),
			"v2.0.0 reads the older switch GPUSTACK_MIGRATION_DATA_DIR and keeps its PostgreSQL in postgres/data, which v2.0.1 moves to "+
				"postgresql/data (#3676); the copy cannot be proven where gpustack-deploy reads v2 databases, and v2.0.0 exits 0 after a "+
				"failed migration. Failed v0.7.1 → v2.0.0 migrations are on record (#3575, #3596).",
			fmt.Sprintf("Jump to v2.0.1 or later, e.g. version = %q; nothing is lost by skipping v2.0.0.", b.latestV2())))
		return
	}
	if db.Revision == "" {
		if len(db.Tables) > 1 || (len(db.Tables) == 1 && db.Tables["alembic_version"] == nil) {
			b.refuse(refuseJump(fmt.Sprintf("the SQLite database has %d tables but no Alembic revision", len(db.Tables)),
				"The migration first upgrades a copy of the SQLite database to "+catalog.JumpRevision+"; without a stamp it cannot.",
				"Restore a backup taken at a release (`gpustack-deploy backups`), or redeploy with a fresh data volume keeping the model cache."))
			return
		}
		b.jump = true
		return
	}
	if dev, ok := b.cat.DevRevision(db.Revision); ok {
		b.refuse(refuseJump(fmt.Sprintf("the SQLite database is stamped %s, a revision only development images wrote", db.Revision),
			dev.Note+". The migration upgrades the SQLite copy to "+catalog.JumpRevision+" first, and no release can start from this revision.",
			"Restore a backup taken before the development image ran (`gpustack-deploy backups`), migrate that, or redeploy with a fresh data volume."))
		return
	}
	rev, ok := b.cat.Revision(db.Revision)
	if !ok {
		b.refuse(refuseJump(fmt.Sprintf("the SQLite database is stamped %s, a revision this catalog does not know", db.Revision),
			"The migration upgrades the SQLite copy to "+catalog.JumpRevision+" first; from an unknown revision it fails.",
			"Restore a backup taken at a release (`gpustack-deploy backups`) and migrate that."))
		return
	}
	jumpAt, _ := b.cat.Revision(catalog.JumpRevision)
	if rev.Index() > jumpAt.Index() {
		b.refuse(refuseJump(fmt.Sprintf("the SQLite database is stamped %s, a v2 revision", rev.ID),
			"v2 never writes SQLite; this database was not made by a release.",
			"Restore a backup taken at a v0.x release (`gpustack-deploy backups`)."))
		return
	}
	if missing := rev.Probe().Check(b.od.Database.Tables); len(missing) > 0 {
		r := refuseProbe(rev, missing)
		r.Code = plan.RefuseDataMigrationBlocked
		r.Detail += " The migration would copy a database whose schema does not match its stamp, and the first v2 start would fail on it."
		b.refuse(r)
		return
	}
	if traces := b.cat.Traces(rev.ID, db.Tables); len(traces) > 0 {
		r := refusePartial(rev, traces)
		r.Code = plan.RefuseDataMigrationBlocked
		b.refuse(r)
		return
	}
	b.jump = true
}

// latestV2 is the newest final release of the v2 era, the one to suggest.
func (b *builder) latestV2() string {
	var pin string
	for _, r := range b.cat.Releases() {
		if !r.Prerelease() && r.Engine == catalog.EngineEmbeddedPostgres {
			pin = r.Tag
		}
	}
	return pin
}

// planJump lists the jump's actions in the order apply runs them.
func (b *builder) planJump() {
	db := b.od.Database
	b.planImage()
	b.planVolume(b.d.Data, b.od.Data)
	if b.d.Cache != nil {
		b.planVolume(*b.d.Cache, b.od.Cache)
	}
	if len(b.out.Refusals) > 0 {
		b.out.Actions = []plan.Action{}
		return
	}
	b.add(plan.Action{Kind: plan.ActionBackupDatabase, Reason: plan.ReasonEraChange, Subject: b.d.Data.Source(),
		From: db.Revision, Detail: b.d.Backup.Dir, Method: plan.MethodVolume})
	migrate := b.migrateData()
	split := b.planCacheSplit(&migrate)
	if len(b.out.Refusals) > 0 {
		b.out.Actions = []plan.Action{}
		return
	}
	b.add(migrate)
	b.add(plan.Action{Kind: plan.ActionReplaceContainer, Reason: plan.ReasonDataMigrated, Subject: b.d.ContainerName,
		From: b.d.ImageTag(), To: b.d.ImageTag(), Detail: "without " + envDataMigration})
	b.add(plan.Action{Kind: plan.ActionVerify, Reason: plan.ReasonContainerChanges, Subject: b.d.ContainerName, To: b.t.head})
	if b.od.Container != nil || b.od.Previous != nil {
		b.add(plan.Action{Kind: plan.ActionRemovePrevious, Reason: plan.ReasonKeptForRollback, Subject: b.d.ContainerName + observe.PreviousSuffix})
	}
	if split {
		b.add(plan.Action{Kind: plan.ActionRemoveOldCache, Reason: plan.ReasonCacheCopied, Subject: b.d.Data.Source(),
			Detail: b.od.InlineCache.String()})
	}
	b.jumpWarnings(migrate)
}

// migrateData is the migrate-data action: from the SQLite revision through
// JumpRevision (where the rows are copied) to the target's head, with the
// tables and rows the copy must carry over.
func (b *builder) migrateData() plan.Action {
	db := b.od.Database
	a := plan.Action{Kind: plan.ActionMigrateData, Reason: plan.ReasonEraChange, Subject: b.d.Data.Source(),
		From: db.Revision, To: b.t.head}
	if steps, err := b.cat.Crossed(db.Revision, b.t.head); err == nil {
		for _, r := range steps {
			a.Steps = append(a.Steps, plan.Step{Revision: r.ID, Message: r.Message, FirstTag: r.FirstTag})
		}
	}
	var copied []string
	var total int64
	for _, t := range catalog.MigratedTables() {
		if _, ok := db.Tables[t]; !ok {
			continue
		}
		n := db.Rows[t]
		a.Rows = append(a.Rows, plan.TableRows{Table: t, Rows: n})
		copied = append(copied, fmt.Sprintf("%s %d", t, n))
		total += n
	}
	a.Detail = fmt.Sprintf("SQLite is brought to %s and copied into PostgreSQL, which v2 then upgrades to %s; %d rows: %s",
		catalog.JumpRevision, b.t.head, total, strings.Join(copied, ", "))
	return a
}

// jumpWarnings says what v2 leaves behind (facts §4 migration.md, §5.3).
func (b *builder) jumpWarnings(migrate plan.Action) {
	var crossed []catalog.Revision
	for _, s := range migrate.Steps {
		if r, ok := b.cat.Revision(s.Revision); ok {
			crossed = append(crossed, r)
		}
	}
	b.hazardWarnings(crossed)
	b.warn("v2 drops the Ollama model source, llama-box and venv-based custom backends",
		"Models from the Ollama library are deleted with their files and instances (revision 2aed534bd7b2); models served by llama-box or "+
			"a venv-based custom backend must be recreated with a v2 backend. Model instances may stay in Starting after the jump; recreating them fixes it (#3475).")
	b.warn("v2 has no Windows or macOS workers",
		"Workers of this server on Windows or macOS cannot join v2. Linux workers must be recreated at the same version as the server, "+
			"from v2's Add Worker command (the Docker socket, privileged and the GPU runtime), after the server is verified.")
	if !b.workerDisabled() {
		b.warn("this data directory keeps its embedded worker under v2",
			"Data directories from before v2.0.1 keep the embedded worker (new v2 installations have none). A v2 worker starts inference "+
				"containers through the Docker socket: give the deployment mount \"docker-sock\" { source = \"/var/run/docker.sock\", "+
				"target = \"/var/run/docker.sock\" }, privileged = true and the GPU runtime, or models will not start on it.")
	}
	if b.d.Cache == nil || b.od.InlineCache != nil {
		b.warn("the backup of the whole data volume includes the model cache inside it",
			"The volume backup is the only way back from the jump, so it is taken whole; with the model files inside the data volume it "+
				"is as large as they are. Declare volume \"cache\" and apply once before the jump to keep future backups small.")
	}
	if !b.d.Backup.BeforeUpgrade {
		b.warn("the volume backup is taken although backup.before_upgrade = false",
			"It is the only way back from the v0.x → v2 data migration: v2 never runs the migration twice on one data directory.")
	}
}

// workerDisabled reports whether the file turns the embedded worker off.
func (b *builder) workerDisabled() bool {
	for _, a := range b.d.Args {
		if a.S == "--disable-worker" {
			return true
		}
	}
	v, ok := b.d.Env["GPUSTACK_DISABLE_WORKER"]
	return ok && (strings.EqualFold(v.S, "true") || v.S == "1")
}

// failedJump refuses a data volume on which an earlier v0.x → v2
// migration started and never finished: the embedded PostgreSQL is there,
// the done-file is not, and either a container still carries the switch
// or PostgreSQL is stamped with a v0.x revision, which only a copy
// interrupted between its two upgrades leaves (`gpustack migrate` brings
// PostgreSQL to JumpRevision, copies, and only then v2 upgrades it).
func (b *builder) failedJump() bool {
	db := b.od.Database
	if db.Engine != catalog.EngineEmbeddedPostgres || db.MigrationDone {
		return false
	}
	evidence := ""
	for _, ct := range []*observe.Container{b.od.Container, b.od.Previous} {
		if ct == nil {
			continue
		}
		for _, kv := range ct.Env {
			name, _, _ := strings.Cut(kv, "=")
			if name == envDataMigration || name == envMigrationDataDir {
				evidence = fmt.Sprintf("container %s was started with %s", ct.Name, name)
			}
		}
	}
	if evidence == "" && db.Status == observe.DBRead && db.Revision != "" {
		jumpAt, _ := b.cat.Revision(catalog.JumpRevision)
		if rev, ok := b.cat.Revision(db.Revision); ok && rev.Index() <= jumpAt.Index() {
			evidence = fmt.Sprintf("the embedded PostgreSQL is stamped %s, a v0.x revision: the copy stopped before v2 upgraded it", db.Revision)
		}
	}
	if evidence == "" && db.SQLiteBeside {
		evidence = "database.db, the v0.x database, lies beside it: v2 was started on v0.x data without the migration, or the migration failed"
	}
	if evidence == "" {
		return false
	}
	b.refuse(plan.Refusal{
		Code:    plan.RefuseFailedDataMigration,
		Summary: "an earlier v0.x → v2 data migration on this volume did not finish",
		Detail: "The data volume holds v2's embedded PostgreSQL but not run/state_migration_done; " + evidence + ". " +
			"v2 does not retry a migration into a non-empty PostgreSQL (#3596), and the v0.x image started on this volume loses data (#3575).",
		Remedy: "Restore the whole-volume backup taken before the jump: `gpustack-deploy backups` lists it (method volume), then " +
			"`gpustack-deploy restore <id>`, and plan again. Without such a backup: take one as it is (`gpustack-deploy backup`), move " +
			"postgresql/, postgres_root_pass and run/ out of the volume by hand (database.db is left untouched by v2), and plan again.",
	})
	return true
}

// refuseEraBack refuses running a v0.x image on v2 data.
func refuseEraBack(target string, migrated bool) plan.Refusal {
	r := plan.Refusal{
		Code:    plan.RefuseEraChange,
		Summary: fmt.Sprintf("the data volume holds GPUStack v2 data; %s is a v0.x release and cannot use it", target),
		Detail: "v0.x keeps its data in SQLite and would start with an empty database, or on the stale database.db the migration left " +
			"behind, losing everything since the jump (#3575). No release migrates PostgreSQL data back to SQLite.",
		Remedy: "Keep a v2 version in the file.",
	}
	if migrated {
		r.Remedy = "Keep a v2 version in the file. To go back to v0.x, restore the whole-volume backup taken before the jump " +
			"(`gpustack-deploy backups` lists it with method volume; `gpustack-deploy restore <id>`): everything written since the jump is lost."
	}
	return r
}

func refuseJump(summary, detail, remedy string) plan.Refusal {
	return plan.Refusal{Code: plan.RefuseDataMigrationBlocked, Summary: summary, Detail: detail, Remedy: remedy}
}

// backupMethod is how this deployment's database is backed up before a change.
func (b *builder) backupMethod() plan.BackupMethod {
	switch {
	case b.d.ExternalDatabase():
		return plan.MethodExternalDump
	case b.od.Database.Engine == catalog.EngineEmbeddedPostgres && b.d.Backup.Method == config.BackupPGDump:
		return plan.MethodPGDump
	case b.od.Database.Engine == catalog.EngineEmbeddedPostgres:
		return plan.MethodPGFiles
	default:
		return plan.MethodSQLite
	}
}
