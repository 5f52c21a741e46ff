// Package plan holds the values a plan is made of: typed actions with the
// reason for each, refusals with their remedy, and warnings. The planner
// computes them, the render package draws them, the executor carries them
// out, and saved plans persist them, so every enum has explicit values.
package plan

import (
	"fmt"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// FormatVersion is the version of the saved-plan and JSON format.
const FormatVersion = 1

// ActionKind is what an action does. Values are persisted in saved plans
// and JSON output: each has an explicit number, never renumber.
type ActionKind int

const (
	// ActionPullImage pulls the target image.
	ActionPullImage ActionKind = 1
	// ActionCreateVolume creates a named volume.
	ActionCreateVolume ActionKind = 2
	// ActionBackupDatabase stops the container and takes a verified backup.
	ActionBackupDatabase ActionKind = 3
	// ActionCreateContainer creates and starts the container.
	ActionCreateContainer ActionKind = 4
	// ActionReplaceContainer stops the container, keeps it aside, creates
	// and starts the new one; the old one is removed after verification.
	ActionReplaceContainer ActionKind = 5
	// ActionStartContainer starts the existing, stopped container.
	ActionStartContainer ActionKind = 6
	// ActionMigrate is the schema migration GPUStack runs at start-up; the
	// executor does not run it but checks its result.
	ActionMigrate ActionKind = 7
	// ActionVerify waits for health and checks version, revision and probe.
	ActionVerify ActionKind = 8
	// ActionRemovePrevious removes a container kept aside by an interrupted apply.
	ActionRemovePrevious ActionKind = 9
	// ActionSafetyCopy stops the container and keeps the database files as
	// they are, unverified, before they are overwritten by a restore.
	ActionSafetyCopy ActionKind = 10
	// ActionRestoreDatabase writes a verified backup into the data volume.
	ActionRestoreDatabase ActionKind = 11
	// ActionRemoveContainer stops and removes a container; its volumes stay.
	ActionRemoveContainer ActionKind = 12
	// ActionDeleteVolume deletes a named volume and everything in it. It
	// runs only after the operator confirmed that very volume by name.
	ActionDeleteVolume ActionKind = 13
	// ActionCopyCache stops the container and copies the model cache out of
	// the data volume into the cache volume, then checks the copy file by
	// file (sizes and sha256).
	ActionCopyCache ActionKind = 14
	// ActionRemoveOldCache removes the model files left in the data volume
	// once the copy in the cache volume is verified and in use.
	ActionRemoveOldCache ActionKind = 15
	// ActionMigrateData is the one-time move of a v0.x SQLite database into
	// v2's embedded PostgreSQL: v2 starts once with GPUSTACK_DATA_MIGRATION
	// set, the executor proves the copy (done-file, log line, rows), then
	// recreates the container without the flag.
	ActionMigrateData ActionKind = 16
)

var actionNames = map[ActionKind]string{
	ActionPullImage:        "pull image",
	ActionCreateVolume:     "create volume",
	ActionBackupDatabase:   "back up database",
	ActionCreateContainer:  "create container",
	ActionReplaceContainer: "replace container",
	ActionStartContainer:   "start container",
	ActionMigrate:          "migrate database",
	ActionVerify:           "verify",
	ActionRemovePrevious:   "remove previous container",
	ActionSafetyCopy:       "keep a safety copy",
	ActionRestoreDatabase:  "restore database",
	ActionRemoveContainer:  "remove container",
	ActionDeleteVolume:     "delete volume",
	ActionCopyCache:        "copy model cache",
	ActionRemoveOldCache:   "remove old cache copy",
	ActionMigrateData:      "migrate data to PostgreSQL",
}

func (k ActionKind) String() string {
	if s, ok := actionNames[k]; ok {
		return s
	}
	return fmt.Sprintf("action(%d)", int(k))
}

// Symbol is the mark the rendered plan shows before the action.
func (k ActionKind) Symbol() string {
	switch k {
	case ActionPullImage:
		return "<="
	case ActionCreateVolume, ActionCreateContainer:
		return "+"
	case ActionReplaceContainer:
		return "-/+"
	case ActionStartContainer:
		return ">"
	case ActionBackupDatabase, ActionSafetyCopy:
		return "*"
	case ActionRestoreDatabase:
		return "<-"
	case ActionMigrate:
		return "~"
	case ActionMigrateData:
		return "~>"
	case ActionVerify:
		return "?"
	case ActionRemovePrevious, ActionRemoveContainer, ActionRemoveOldCache:
		return "-"
	case ActionDeleteVolume:
		return "!-"
	case ActionCopyCache:
		return ">>"
	default:
		return " "
	}
}

// IsChange reports whether the action changes something on the host.
// Verify only reads; Migrate is carried out by GPUStack when the container
// starts, so it never stands alone.
func (k ActionKind) IsChange() bool { return k != ActionVerify && k != ActionMigrate }

// Reason says why an action is planned. It is for the reader only; the
// executor never branches on it. Values are persisted: never renumber.
type Reason int

const (
	ReasonNone             Reason = 0
	ReasonImageMissing     Reason = 1
	ReasonPullAlways       Reason = 2
	ReasonVolumeMissing    Reason = 3
	ReasonNewDeployment    Reason = 4
	ReasonVersionChanged   Reason = 5
	ReasonConfigChanged    Reason = 6
	ReasonContainerStopped Reason = 7
	ReasonImageChanges     Reason = 8
	ReasonRevisionBehind   Reason = 9
	ReasonFreshDatabase    Reason = 10
	ReasonContainerChanges Reason = 11
	ReasonLeftover         Reason = 12
	ReasonContainerMissing Reason = 13
	ReasonKeptForRollback  Reason = 14
	ReasonRestoreRequested Reason = 15
	ReasonBeforeOverwrite  Reason = 16
	ReasonBackupVersion    Reason = 17
	ReasonUnverified       Reason = 18
	ReasonReplaceData      Reason = 19
	ReasonCacheInData      Reason = 20
	ReasonCacheCopied      Reason = 21
	ReasonDestroy          Reason = 22
	ReasonDeleteRequested  Reason = 23
	ReasonEraChange        Reason = 24
	ReasonDataMigrated     Reason = 25
	// ReasonExternalDatabase: GPUStack migrates the database named by
	// database_url at start; gpustack-deploy cannot read its revision.
	ReasonExternalDatabase Reason = 26
	// ReasonTokenChanged: the worker was created with another token than
	// the one in its server's data volume (the server was redeployed).
	ReasonTokenChanged Reason = 27
)

var reasonTexts = map[Reason]string{
	ReasonImageMissing:     "the image is not on the host",
	ReasonPullAlways:       "policy pull = \"always\"",
	ReasonVolumeMissing:    "the volume does not exist",
	ReasonNewDeployment:    "the deployment has no container yet",
	ReasonVersionChanged:   "the version changes",
	ReasonConfigChanged:    "the configuration changed",
	ReasonContainerStopped: "the container is not running",
	ReasonImageChanges:     "the image changes, so the database must be saved first",
	ReasonRevisionBehind:   "the database is behind the target release",
	ReasonFreshDatabase:    "GPUStack creates the database at its first start",
	ReasonContainerChanges: "a new container must prove it works",
	ReasonLeftover:         "an interrupted apply left it behind",
	ReasonContainerMissing: "the container was removed",
	ReasonKeptForRollback:  "it was kept only to roll back to until the new container is verified",
	ReasonRestoreRequested: "restore was asked for",
	ReasonBeforeOverwrite:  "the database is about to be overwritten, whatever state it is in",
	ReasonBackupVersion:    "the backup was taken at this version",
	ReasonUnverified:       "an interrupted apply started it but never verified it",
	ReasonReplaceData:      "a fresh data volume was asked for (--replace)",
	ReasonCacheInData:      "the model cache lives inside the data volume; the file gives it a volume of its own",
	ReasonCacheCopied:      "the copy in the cache volume is verified and in use",
	ReasonDestroy:          "destroy was asked for",
	ReasonDeleteRequested:  "its deletion was asked for by name",
	ReasonEraChange:        "the data volume holds v0.x SQLite data and the target is v2, which keeps its data in PostgreSQL",
	ReasonDataMigrated:     "the migration flag must not stay set for later starts",
	ReasonExternalDatabase: "the database is external: GPUStack migrates it at start, and gpustack-deploy cannot read its revision",
	ReasonTokenChanged:     "the server's registration token is not the one the worker was created with",
}

func (r Reason) String() string { return reasonTexts[r] }

// Action is one step of a deployment's plan.
type Action struct {
	Kind   ActionKind `json:"kind"`
	Reason Reason     `json:"reason"`
	// Subject is what the action works on: an image reference, a volume,
	// a container name, or for migrations the target revision.
	Subject string `json:"subject"`
	// Detail adds specifics to the reason ("args, env GPUSTACK_DEBUG").
	Detail string `json:"detail,omitempty"`
	// From and To are versions (replace) or revisions (migrate).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Steps are the revisions a migration crosses.
	Steps []Step `json:"steps,omitempty"`
	// Method is how a backup, safety copy or restore handles the data.
	Method BackupMethod `json:"method,omitempty"`
	// Rows are, for a data migration, the tables v2 copies out of the
	// SQLite database with the rows each held when the plan was made, in
	// the order GPUStack copies them. The executor proves the copy against
	// a fresh count; these are for the reader and for sanity checks.
	Rows []TableRows `json:"rows,omitempty"`
}

// TableRows is a table and how many rows it holds.
type TableRows struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// BackupMethod is how a backup is taken and restored. The values are
// persisted in manifests, saved plans and JSON output; never rename one.
type BackupMethod string

const (
	// MethodSQLite folds database.db (WAL included) into one verified
	// SQLite file, GPUStack stopped. The only method of the v0.x era.
	MethodSQLite BackupMethod = "sqlite"
	// MethodPGFiles archives postgresql/data of v2's embedded PostgreSQL
	// with numeric owners and modes, GPUStack stopped (clean shut-down).
	MethodPGFiles BackupMethod = "pg-files"
	// MethodPGDump is a logical pg_dump of the embedded database, taken
	// from the running container.
	MethodPGDump BackupMethod = "pg-dump"
	// MethodVolume archives the whole data volume, GPUStack stopped: the
	// only way back from a v0.x → v2 data migration.
	MethodVolume BackupMethod = "volume"
	// MethodExternalDump runs pg_dump or mysqldump against an external
	// database from a one-off container.
	MethodExternalDump BackupMethod = "external-dump"
)

// Step is one revision a migration applies.
type Step struct {
	Revision string `json:"revision"`
	Message  string `json:"message"`
	FirstTag string `json:"first_tag"`
}

// Warning is something the reader should know; it does not block apply.
type Warning struct {
	Summary string `json:"summary"`
	Detail  string `json:"detail,omitempty"`
}

// State summarises one side of a deployment for the reader.
type State struct {
	// Version is the image tag ("v0.5.1-cpu"); empty when nothing runs.
	Version string `json:"version,omitempty"`
	// Release is the catalog release the tag resolves to, if any.
	Release   string `json:"release,omitempty"`
	Image     string `json:"image,omitempty"`
	Container string `json:"container,omitempty"`
	Health    string `json:"health,omitempty"`
	// Revision is the database revision (current) or the release head (target).
	Revision string         `json:"revision,omitempty"`
	Engine   catalog.Engine `json:"engine,omitempty"`
	Database string         `json:"database,omitempty"`
}

// Deployment is the plan for one deployment.
type Deployment struct {
	Name     string    `json:"name"`
	Host     string    `json:"host"`
	Current  State     `json:"current"`
	Target   State     `json:"target"`
	Actions  []Action  `json:"actions"`
	Refusals []Refusal `json:"refusals,omitempty"`
	Warnings []Warning `json:"warnings,omitempty"`
	// Tag is the target tag's classification.
	Tag catalog.Tag `json:"tag"`
	// Role is "worker" for a worker block; empty for a server.
	Role string `json:"role,omitempty"`
	// Server is, for a worker, the server deployment it registers with.
	Server string `json:"server,omitempty"`
	// Wave is, for a worker with changes, the wave of its server's
	// rollout it is recreated in (1, 2, …): a wave's workers are recreated
	// at once, and a wave starts when the one before it is verified.
	Wave int `json:"wave,omitempty"`
	// Maintenance is set when the worker is put in maintenance mode
	// through its server's API while it is recreated (v2 servers).
	Maintenance bool `json:"maintenance,omitempty"`
}

// IsWorker reports whether the deployment is a worker.
func (d *Deployment) IsWorker() bool { return d.Role == RoleWorker }

// RoleWorker is Deployment.Role of a worker.
const RoleWorker = "worker"

// HasChanges reports whether applying would change anything.
func (d *Deployment) HasChanges() bool {
	for _, a := range d.Actions {
		if a.Kind.IsChange() {
			return true
		}
	}
	return false
}

// Action returns the first action of kind k, if planned.
func (d *Deployment) Action(k ActionKind) (Action, bool) {
	for _, a := range d.Actions {
		if a.Kind == k {
			return a, true
		}
	}
	return Action{}, false
}

// Plan is the result of comparing the desired state with the observed one.
type Plan struct {
	FormatVersion int          `json:"format_version"`
	Deployments   []Deployment `json:"deployments"`
	// Observed is the fingerprint of the observation the plan was made from.
	Observed string `json:"observed"`
	// Unreachable names the hosts that did not answer: their deployments
	// are not in the plan, and such a plan is never saved or applied.
	Unreachable []string `json:"unreachable_hosts,omitempty"`
}

// WaveEnd returns the end (exclusive) of the run of deployments that
// starts at the worker Deployments[i] and belongs to the same server's
// same wave: the workers apply recreates at once.
func (p *Plan) WaveEnd(i int) int {
	j := i + 1
	for j < len(p.Deployments) && p.Deployments[j].IsWorker() &&
		p.Deployments[j].Server == p.Deployments[i].Server && p.Deployments[j].Wave == p.Deployments[i].Wave {
		j++
	}
	return j
}

// HasChanges reports whether any deployment would change.
func (p *Plan) HasChanges() bool {
	for i := range p.Deployments {
		if p.Deployments[i].HasChanges() {
			return true
		}
	}
	return false
}

// Refused reports whether any deployment carries a refusal.
func (p *Plan) Refused() bool {
	for _, d := range p.Deployments {
		if len(d.Refusals) > 0 {
			return true
		}
	}
	return false
}

// String renders the plan compactly and deterministically; tests use it as
// their oracle. Human output is the render package's job.
func (p *Plan) String() string {
	var b strings.Builder
	for _, d := range p.Deployments {
		fmt.Fprintf(&b, "%s@%s:", d.Name, d.Host)
		if d.IsWorker() {
			fmt.Fprintf(&b, " worker of %s", d.Server)
			if d.Wave > 0 {
				fmt.Fprintf(&b, " wave %d", d.Wave)
			}
			if d.Maintenance {
				b.WriteString(" maintenance")
			}
		}
		b.WriteString("\n")
		for _, a := range d.Actions {
			fmt.Fprintf(&b, "  %s %s", a.Kind, a.Subject)
			if a.From != "" || a.To != "" {
				fmt.Fprintf(&b, " (%s -> %s)", a.From, a.To)
			}
			if a.Method != "" {
				fmt.Fprintf(&b, " {%s}", a.Method)
			}
			if a.Reason != ReasonNone {
				fmt.Fprintf(&b, " [%s", a.Reason)
				if a.Detail != "" {
					fmt.Fprintf(&b, ": %s", a.Detail)
				}
				b.WriteString("]")
			}
			b.WriteString("\n")
		}
		for _, r := range d.Refusals {
			fmt.Fprintf(&b, "  REFUSED %s: %s\n", r.Code, r.Summary)
		}
		for _, w := range d.Warnings {
			fmt.Fprintf(&b, "  WARNING %s\n", w.Summary)
		}
	}
	return b.String()
}
