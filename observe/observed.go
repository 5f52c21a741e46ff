// Package observe takes one snapshot of what runs on each Docker host for
// the deployments of a configuration: their containers, images, volumes and
// the state of their database. It records facts and decides nothing; the
// planner reads the snapshot.
package observe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// Observed is the snapshot of every deployment, keyed by deployment name.
type Observed struct {
	Deployments map[string]*Deployment `json:"deployments"`
}

// Deployment is what one host holds for one deployment.
type Deployment struct {
	Name string `json:"name"`
	Host string `json:"host"`
	// Container is the container with the deployment's container name, if any.
	Container *Container `json:"container,omitempty"`
	// Previous is a container kept aside by an interrupted replace.
	Previous *Container `json:"previous,omitempty"`
	// Image is the desired image when it is present locally.
	Image *Image `json:"image,omitempty"`
	// Data and Cache describe the deployment's volumes; nil when absent.
	Data  *Volume `json:"data,omitempty"`
	Cache *Volume `json:"cache,omitempty"`
	// Database is what the data volume holds.
	Database Database `json:"database"`
	// External is the external database named by database_url, when it
	// could be read (PostgreSQL, backup.tool_image on the host); nil
	// when not read.
	External *Database `json:"external,omitempty"`
	// InlineCache is what the data volume holds in its default cache dir
	// while the deployment declares a cache volume of its own that the
	// container does not mount yet: the model files a split must move.
	InlineCache *Usage `json:"inline_cache,omitempty"`
	// DataUsage and CacheUsage are measured only when asked
	// (WithUsage), before a volume may be deleted.
	DataUsage  *Usage `json:"data_usage,omitempty"`
	CacheUsage *Usage `json:"cache_usage,omitempty"`
	// UsageError says why a measurement that was needed failed.
	UsageError string `json:"usage_error,omitempty"`
	// TokenDigest is spec.TokenDigest of the registration token: for a
	// server, the one in its data volume; for a worker, the one its
	// container was created with. Never the token itself.
	TokenDigest string `json:"token_digest,omitempty"`
	// TokenError says why a server's token could not be read.
	TokenError string `json:"token_error,omitempty"`
}

// Container is a container as far as the plan cares.
type Container struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Image     string            `json:"image"`
	ImageID   string            `json:"image_id"`
	State     string            `json:"state"`
	ExitCode  int               `json:"exit_code"`
	StartedAt time.Time         `json:"started_at"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Managed is true when the container carries our deployment label for this deployment.
	Managed bool `json:"managed"`
	// Args, Env and Mounts are kept to explain drift; Env values are
	// never rendered.
	Args   []string `json:"-"`
	Env    []string `json:"-"`
	Mounts []Mount  `json:"mounts,omitempty"`
	Ports  []Port   `json:"ports,omitempty"`
	// Restart is the container's restart policy.
	Restart string `json:"restart,omitempty"`
	// Run holds the engine options (GPUs, runtime, network …) as the
	// engine reports them, defaults included.
	Run spec.RunOptions `json:"run"`
	// Health is the result of GET /healthz on the published port, when the
	// container runs and the port is reachable: "ok", "unhealthy: …" or "".
	Health string `json:"health,omitempty"`
}

// Running reports whether the container's process is up.
func (c *Container) Running() bool {
	return c != nil && (c.State == "running" || c.State == "restarting")
}

// Mount is one mount of a container.
type Mount struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only,omitempty"`
}

// Port is one published port.
type Port struct {
	HostIP        string `json:"host_ip"`
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
}

// Image is a local image.
type Image struct {
	Ref string `json:"ref"`
	ID  string `json:"id"`
	// Version is the image's org.opencontainers.image.version label.
	Version string `json:"version,omitempty"`
}

// Volume is a named volume or a host directory.
type Volume struct {
	Source string `json:"source"`
	// Managed is true for a named volume carrying our deployment label.
	Managed bool `json:"managed"`
	// Bind is true for host directories.
	Bind bool `json:"bind"`
}

// DBStatus says how much is known about the database.
type DBStatus int

// Values are persisted in saved plans; never renumber.
const (
	// DBUnknown: the data volume could not be read (see Database.Reason).
	DBUnknown DBStatus = 0
	// DBAbsent: the data volume does not exist or holds no database yet.
	DBAbsent DBStatus = 1
	// DBRead: the database was read; Revision and Missing are filled.
	DBRead DBStatus = 2
	// DBUnsupported: the database exists but this version cannot read it
	// (the embedded PostgreSQL of GPUStack v2).
	DBUnsupported DBStatus = 3
)

func (s DBStatus) String() string {
	switch s {
	case DBAbsent:
		return "absent"
	case DBRead:
		return "read"
	case DBUnsupported:
		return "unsupported"
	default:
		return "unknown"
	}
}

// Database is what the data volume holds.
type Database struct {
	Status DBStatus       `json:"status"`
	Engine catalog.Engine `json:"engine,omitempty"`
	// Revision is the stamped Alembic revision; empty for a database
	// GPUStack created but never stamped.
	Revision string `json:"revision,omitempty"`
	// Tables lists each table's columns, for the planner's probe.
	Tables map[string][]string `json:"tables,omitempty"`
	// Rows counts rows per table.
	Rows map[string]int64 `json:"rows,omitempty"`
	// Size is the size in bytes of the database file(s).
	Size int64 `json:"size,omitempty"`
	// Reason explains DBUnknown and DBUnsupported.
	Reason string `json:"reason,omitempty"`
	// MigrationDone is true when run/state_migration_done exists (v2).
	MigrationDone bool `json:"migration_done,omitempty"`
	// PGDir is the live PGDATA of the embedded PostgreSQL, relative to the
	// data directory (one of PGDirs); StalePGDirs are the other spellings
	// found beside it, which GPUStack ignores (#3676).
	PGDir       string   `json:"pg_dir,omitempty"`
	StalePGDirs []string `json:"stale_pg_dirs,omitempty"`
	// SQLiteBeside is true when a v0.x database.db lies beside the
	// embedded PostgreSQL: left by a data migration (v2 never deletes it)
	// or by a v2 started on v0.x data without the migration switch.
	SQLiteBeside bool `json:"sqlite_beside,omitempty"`
}

// Fingerprint is a digest of everything a plan was computed from. A saved
// plan records it; applying the plan refuses when it has changed.
func (o *Observed) Fingerprint() string {
	type fp struct {
		Name, Host             string
		Container, Previous    string
		ContainerState         string
		ImageID                string
		Data, Cache            bool
		DBStatus               DBStatus
		Revision, Reason, Hash string
		InlineFiles            int64
		External               string `json:",omitempty"`
	}
	var rows []fp
	for _, name := range sortedNames(o.Deployments) {
		d := o.Deployments[name]
		r := fp{Name: d.Name, Host: d.Host, DBStatus: d.Database.Status, Revision: d.Database.Revision, Reason: d.Database.Reason, Data: d.Data != nil, Cache: d.Cache != nil}
		if d.InlineCache != nil {
			r.InlineFiles = d.InlineCache.Files
		}
		if d.External != nil {
			r.External = d.External.Status.String() + ":" + d.External.Revision
		}
		if d.Container != nil {
			r.Container, r.ContainerState = d.Container.ID, d.Container.State
		}
		if d.Previous != nil {
			r.Previous = d.Previous.ID
		}
		if d.Image != nil {
			r.ImageID = d.Image.ID
		}
		tables, _ := json.Marshal(d.Database.Tables)
		sum := sha256.Sum256(tables)
		r.Hash = hex.EncodeToString(sum[:8])
		rows = append(rows, r)
	}
	b, _ := json.Marshal(rows)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
