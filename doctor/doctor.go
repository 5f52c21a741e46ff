// Package doctor explains what is wrong with a GPUStack deployment and
// ranks the ways back, each as commands a person can run: restore a
// verified backup, pin the release that wrote the database, or start over
// with an empty data volume while keeping the model cache.
//
// It reads one snapshot (Input) gathered by the command layer: the
// container and its image, the end of its log, the database, the backups
// and what the configuration file says. It matches known failure
// signatures of GPUStack (facts §3.1–3.4, §5) against log lines and
// database facts. It is a pure function of its input and the catalog: no
// I/O, no clock, so that a report is reproducible and table-testable. It
// never changes anything, and it never suggests that gpustack-deploy
// removes a data volume by itself.
package doctor

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

// Input is everything the diagnosis looks at.
type Input struct {
	// Deployment and Host name the deployment; Deployment is empty when a
	// container is diagnosed by name without a configuration file.
	Deployment string
	Host       string
	// Container is the deployment's container (or the one named); nil if none.
	Container *observe.Container
	// Image is the image the container was created from.
	Image *Image
	// LogTail is the end of the container's output, oldest line first.
	LogTail []string
	// Database is what the data volume holds.
	Database observe.Database
	// LegacySQLite is database.db when it lies beside v2's embedded
	// PostgreSQL in the data volume (Database is then DBUnsupported).
	LegacySQLite *observe.Database
	// Backups are the deployment's backups, newest first.
	Backups []backup.Manifest
	// BackupDir is the directory holding Backups, for commands that reach
	// them without gpustack-deploy.
	BackupDir string

	// ConfigFile is the file that declares the deployment; empty when a
	// container is diagnosed by name. Files are the -f arguments commands
	// repeat (ConfigFile alone when empty).
	ConfigFile    string
	Files         []string
	ConfigVersion string
	ConfigVariant string

	// Data is the data volume mounted at /var/lib/gpustack: a volume name,
	// or a host directory when DataBind. Empty when unknown.
	Data     string
	DataBind bool
	// Cache is the model cache volume when it is separate from Data; empty
	// when the cache lives inside the data volume.
	Cache string

	// Others are further containers that mount the same data volume.
	Others []Other

	// Worker is set for a worker block: it keeps no database, so none is
	// diagnosed, and its data volume holds its identity only.
	Worker bool
}

// Image is the image a container runs.
type Image struct {
	// Ref is the reference the container was created from, e.g. "gpustack/gpustack:main-cpu".
	Ref string `json:"ref"`
	// Version is the image's org.opencontainers.image.version label, if any.
	Version string `json:"version,omitempty"`
	// Env is the environment the image itself sets (NAME=value); a
	// recreated container gets it from the image again.
	Env []string `json:"-"`
}

// Tag is the tag part of Ref ("latest" when Ref names none, "" for a digest).
func (i Image) Tag() string {
	_, tag := splitRef(i.Ref)
	return tag
}

// Repository is Ref without its tag.
func (i Image) Repository() string {
	repo, _ := splitRef(i.Ref)
	return repo
}

func splitRef(ref string) (repo, tag string) {
	if at := strings.Index(ref, "@"); at >= 0 {
		return ref[:at], ""
	}
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[:colon], ref[colon+1:]
	}
	return ref, "latest"
}

// Other is another container that mounts the deployment's data volume.
type Other struct {
	Container observe.Container
	Image     Image
	LogTail   []string
}

// Severity orders findings. The values are persisted in JSON output.
type Severity string

const (
	// Critical: the data is damaged or GPUStack cannot start on it.
	Critical Severity = "critical"
	// Error: the deployment does not serve.
	Error Severity = "error"
	// Warning: a risk or a drift that needs attention.
	Warning Severity = "warning"
	// Info: a fact worth knowing; the deployment can still be healthy.
	Info Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case Critical:
		return 0
	case Error:
		return 1
	case Warning:
		return 2
	default:
		return 3
	}
}

// Report is the diagnosis of one deployment or container.
type Report struct {
	Deployment string `json:"deployment,omitempty"`
	Host       string `json:"host,omitempty"`
	Container  string `json:"container,omitempty"`
	// Summary is one line on what runs and what the data volume holds.
	Summary string `json:"summary"`
	// Healthy is true when no finding is a warning or worse.
	Healthy  bool      `json:"healthy"`
	Findings []Finding `json:"findings"`
	// Options are the ways back, best first; empty when healthy.
	Options []Option `json:"options"`
	// Notes are hints beyond the options, e.g. how to manage a container
	// that was started by hand.
	Notes []string `json:"notes,omitempty"`
}

// Finding is one thing that is wrong or worth knowing.
type Finding struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail"`
	// Evidence is the log line or the fact the finding rests on.
	Evidence string `json:"evidence,omitempty"`
}

// Option is one way back.
type Option struct {
	Rank int `json:"rank"`
	// Kind is restore, pin, start, fresh or inspect.
	Kind     string   `json:"kind"`
	Title    string   `json:"title"`
	Why      string   `json:"why"`
	Commands []string `json:"commands"`
	Risk     string   `json:"risk"`
}

// Finding codes.
const (
	CodeNoSuchColumn      = "log-no-such-column"
	CodeUnknownRevisionLg = "log-cannot-locate-revision"
	CodeDuplicateColumn   = "log-duplicate-column"
	CodeStartFailed       = "log-start-failed"
	CodeDataMigration     = "log-data-migration-failed"
	CodeBadArguments      = "log-bad-arguments"
	CodeProbeMismatch     = "db-probe-mismatch"
	CodePartialMigration  = "db-partial-migration"
	CodeDevRevision       = "db-dev-revision"
	CodeUnknownRevision   = "db-unknown-revision"
	CodeUnstamped         = "db-unstamped"
	CodeUnreadable        = "db-unreadable"
	CodeNotInspected      = "db-not-inspected"
	CodeNoDatabase        = "db-absent"
	CodeAheadOfImage      = "db-ahead-of-image"
	CodeEraMismatch       = "era-mismatch"
	CodeDevTag            = "image-dev-tag"
	CodeFloatingTag       = "image-floating-tag"
	CodePrerelease        = "image-prerelease"
	CodeNotItsTag         = "image-not-its-tag"
	CodeExited            = "container-exited"
	CodeRestarting        = "container-restarting"
	CodeUnhealthy         = "container-unhealthy"
	CodeAbsent            = "container-absent"
	CodeUnmanaged         = "container-unmanaged"
	CodeSharedVolume      = "volume-shared"
	CodeConfigDrift       = "config-differs"
)

// Diagnose explains in and ranks the ways back.
func Diagnose(in Input, cat *catalog.Catalog) Report {
	d := newDiagnosis(in, cat)
	// The database first: log lines are explained with its stamp.
	if !in.Worker {
		d.checkDatabase()
	}
	d.checkContainers()
	d.checkEra()
	d.checkConfig()
	r := Report{Deployment: in.Deployment, Host: in.Host, Summary: d.summary(), Findings: d.findings, Options: []Option{}}
	if in.Container != nil {
		r.Container = in.Container.Name
	}
	sortFindings(r.Findings)
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	r.Healthy = true
	for _, f := range r.Findings {
		if f.Severity.rank() <= Warning.rank() {
			r.Healthy = false
		}
	}
	if !r.Healthy {
		r.Options = d.options()
	}
	r.Notes = d.notes(r.Healthy)
	return r
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity.rank() != b.Severity.rank() {
			return a.Severity.rank() < b.Severity.rank()
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		if a.Summary != b.Summary {
			return a.Summary < b.Summary
		}
		return a.Evidence < b.Evidence
	})
}

// diagnosis holds what the checks learn on the way.
type diagnosis struct {
	in       Input
	cat      *catalog.Catalog
	findings []Finding
	seen     map[string]bool

	primary *subject
	others  []*subject
	// db is the SQLite database that matters: the one read from the data
	// volume, or database.db left unmigrated beside v2's PostgreSQL.
	db *observe.Database
	// stamp is db's revision when it is on the release chain.
	stamp *catalog.Revision
	// dbGood: db is stamped on the chain, passes its probe and shows no
	// half-applied next revision. dbDamaged: no release can start on it.
	dbGood, dbDamaged bool
	// mismatch says why the image does not fit a good database; empty
	// when it fits.
	mismatch string
	// newerStampLogged: the deployment's container could not locate a
	// released revision, so the database is newer than its image.
	newerStampLogged bool
	// failedAt is when the container whose log shows the failure started.
	failedAt time.Time
	// logFailure is true when the deployment's own container logged a
	// failed start in its last run (rejected arguments aside).
	logFailure bool
}

func newDiagnosis(in Input, cat *catalog.Catalog) *diagnosis {
	d := &diagnosis{in: in, cat: cat, seen: map[string]bool{}}
	if in.Container != nil {
		img := Image{Ref: in.Container.Image}
		if in.Image != nil {
			img = *in.Image
			if img.Ref == "" {
				img.Ref = in.Container.Image
			}
		}
		d.primary = d.identify(in.Container, img, in.LogTail, true)
	}
	for i := range in.Others {
		o := in.Others[i]
		d.others = append(d.others, d.identify(&o.Container, o.Image, o.LogTail, false))
	}
	switch {
	case in.Database.Status == observe.DBRead && in.Database.Engine != catalog.EngineEmbeddedPostgres:
		// d.db is the SQLite database; v2's PostgreSQL is described apart.
		d.db = &in.Database
	case in.Database.Status == observe.DBUnsupported && in.LegacySQLite != nil &&
		in.LegacySQLite.Status == observe.DBRead && !in.Database.MigrationDone:
		d.db = in.LegacySQLite
	}
	return d
}

// add records a finding once per code and summary.
func (d *diagnosis) add(f Finding) {
	key := f.Code + "\x00" + f.Summary
	if d.seen[key] {
		return
	}
	d.seen[key] = true
	d.findings = append(d.findings, f)
}

// has reports whether a finding with the code was recorded.
func (d *diagnosis) has(code string) bool {
	for _, f := range d.findings {
		if f.Code == code {
			return true
		}
	}
	return false
}

func (d *diagnosis) summary() string {
	var parts []string
	if ct := d.in.Container; ct != nil {
		state := ct.State
		if !ct.Running() {
			state = fmt.Sprintf("%s (code %d)", ct.State, ct.ExitCode)
		}
		s := fmt.Sprintf("container %s %s, image %s", ct.Name, state, d.primary.image.Ref)
		if d.primary.version != "" && d.primary.version != d.primary.image.Tag() {
			s += " (reports " + d.primary.version + ")"
		}
		parts = append(parts, s)
	} else if d.in.Deployment != "" {
		parts = append(parts, "no container")
	}
	parts = append(parts, d.describeDatabase())
	verified := 0
	for _, m := range d.in.Backups {
		if m.Verified {
			verified++
		}
	}
	if len(d.in.Backups) > 0 || d.in.BackupDir != "" {
		parts = append(parts, fmt.Sprintf("%d backup(s), %d verified", len(d.in.Backups), verified))
	}
	return strings.Join(parts, "; ")
}

func (d *diagnosis) describeDatabase() string {
	if d.in.Worker {
		return "a worker (no database)"
	}
	db := d.in.Database
	switch db.Status {
	case observe.DBAbsent:
		return "no database yet"
	case observe.DBUnknown:
		return "database unreadable"
	case observe.DBUnsupported:
		if d.db != nil {
			return "v2 embedded PostgreSQL (not inspected) beside an unmigrated database.db at " + dash(d.db.Revision)
		}
		return "v2 embedded PostgreSQL (not inspected)"
	}
	kind := "SQLite database"
	if db.Engine == catalog.EngineEmbeddedPostgres {
		kind = "v2 embedded PostgreSQL"
	}
	if db.Revision == "" {
		return kind + " without a revision"
	}
	s := kind + " at " + db.Revision
	if rels := d.cat.ReleasesWithHead(db.Revision); len(rels) > 0 {
		s += " (head of " + rels[len(rels)-1].Tag + ")"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
