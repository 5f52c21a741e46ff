package config

import (
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// DefaultHost is the name of the Docker host a deployment runs on when the
// file names none: the engine DOCKER_HOST (or --docker-host) points at.
const DefaultHost = "default"

// Desired is the validated content of one or more configuration files.
type Desired struct {
	// Deployments are sorted by host, then name.
	Deployments []Deployment
	// CatalogFile is an optional catalog extension named by the files.
	CatalogFile string
	// Hosts are the declared host blocks, sorted by name. A deployment
	// whose Host is not among them runs on DefaultHost: the environment.
	Hosts []Host
}

// Host is one host block: a Docker engine and how to reach it.
type Host struct {
	Name string
	// DockerHost is the engine's address: unix:///path, tcp://host:port
	// or ssh://[user@]host[:port].
	DockerHost string
	// Address is the host's address on the network its GPUStack
	// containers are reached at (address = "10.0.0.5"): workers register
	// with a server at its host's address, and gpustack-deploy probes the
	// containers there. Empty when the file does not say.
	Address string
	// TLS holds absolute paths of the client TLS files (tcp:// only).
	TLS       *TLSFiles
	DeclRange hcl.Range
}

// TLSFiles are the paths of the files a tcp:// host is reached with. CA
// verifies the daemon; Cert and Key (both or neither) identify the client.
type TLSFiles struct {
	CA, Cert, Key string
}

// Host returns the host block named name, or nil when the files declare
// none by that name (DefaultHost is then the environment).
func (d *Desired) Host(name string) *Host {
	for i := range d.Hosts {
		if d.Hosts[i].Name == name {
			return &d.Hosts[i]
		}
	}
	return nil
}

// Roles of a deployment.
const (
	// RoleServer is a gpustack block: a GPUStack server with its database.
	RoleServer = "server"
	// RoleWorker is a worker block: a GPUStack worker that registers with
	// a server of the same files; it has no database.
	RoleWorker = "worker"
)

// DefaultWorkerPort is the port a worker's API listens on (--worker-port).
const DefaultWorkerPort = 10150

// DefaultMaxParallel is how many workers of a server are upgraded at once
// unless rollout { max_parallel } says otherwise.
const DefaultMaxParallel = 1

// Deployment is one GPUStack container and its volumes: a server (a
// gpustack block) or a worker (a worker block).
type Deployment struct {
	Name string
	Host string
	// Role is RoleServer or RoleWorker.
	Role string

	// Server is, for a worker, the name of the gpustack block it joins.
	Server string
	// ServerURL is, for a worker, the URL it registers with
	// (--server-url); gpustack-deploy reaches the server's API there.
	ServerURL string
	// WorkerName is, for a worker, the name it registers under
	// (--worker-name): the block's name unless worker_name says otherwise.
	WorkerName string
	// VersionFollowsServer is set when a worker block names no version
	// and runs its server's.
	VersionFollowsServer bool
	// APIKey is, for a server, the admin API key gpustack-deploy calls the
	// server's API with (maintenance mode, the workers' state); always
	// sensitive, empty when the file gives none.
	APIKey Value
	// AdminPassword is, for a server, the password of its "admin" user,
	// used instead of APIKey (a login, POST /auth/login); always sensitive.
	AdminPassword Value
	// MaxParallel is, for a server, how many of its workers one wave of
	// an upgrade recreates at once.
	MaxParallel int

	// Version is the tag without variant suffix as written ("v0.5.1", "main", "latest").
	Version string
	// Variant is the device suffix ("cpu"), empty for the default image.
	Variant string
	// Era is the database engine the image uses: the release's engine when
	// the catalog knows Version, otherwise what the tag implies (see Era).
	Era catalog.Engine
	// Image is the repository, e.g. "gpustack/gpustack" or "quay.io/gpustack/gpustack".
	Image string
	// ContainerName is the Docker container name.
	ContainerName string

	// Port is the host port published to ContainerPort; ListenAddress is the
	// host address it binds ("0.0.0.0" unless the file says otherwise).
	// With NetworkMode "host" nothing is published: Port is 0 and
	// ListenAddress empty, and GPUStack listens on ContainerPort on the
	// host. Reach it through HealthPort. A worker always uses the host's
	// network, and ContainerPort is its worker_port (--worker-port).
	Port          int
	ContainerPort int
	ListenAddress string
	// NetworkMode is "bridge" (the default: the port is published) or "host".
	NetworkMode string

	// Args are passed after the image name (`gpustack start` flags).
	Args []Value
	// Env is the container environment, by name.
	Env map[string]Value
	// Labels are extra container labels set by the user.
	Labels map[string]string
	// DatabaseURL is the external database GPUStack uses instead of its
	// own (database_url), passed as GPUSTACK_DATABASE_URL; always
	// sensitive, empty when GPUStack keeps its database in the data volume.
	DatabaseURL Value
	// DatabaseScheme is DatabaseURL's scheme: SchemePostgreSQL,
	// SchemeMySQL or SchemeSQLite; empty without database_url. Not secret.
	DatabaseScheme string

	Data  Volume
	Cache *Volume // nil when the file declares no cache volume
	// Mounts are the extra mounts (mount blocks), sorted by label.
	Mounts []Mount

	// GPUs, Runtime, Privileged, IpcMode, ShmSize and Devices are the
	// engine options GPU workers and servers are run with (docker run
	// --gpus, --runtime, --privileged, --ipc, --shm-size, --device). Zero
	// values mean Docker's defaults.
	GPUs       GPUs
	Runtime    string
	Privileged bool
	IpcMode    string
	ShmSize    int64 // bytes
	Devices    []Device

	Policy Policy
	Backup BackupPolicy
	Health Health
	// Restart is the Docker restart policy name ("unless-stopped").
	Restart string

	// Source ranges of the attributes decisions point back to.
	DeclRange    hcl.Range
	VersionRange hcl.Range
}

// HasAPICredentials reports whether gpustack-deploy may call the server's
// admin API: an API key or the admin's password.
func (d Deployment) HasAPICredentials() bool { return d.APIKey.S != "" || d.AdminPassword.S != "" }

// IsWorker reports whether the deployment is a worker block.
func (d Deployment) IsWorker() bool { return d.Role == RoleWorker }

// Deployment returns the deployment named name, or nil.
func (d *Desired) Deployment(name string) *Deployment {
	for i := range d.Deployments {
		if d.Deployments[i].Name == name {
			return &d.Deployments[i]
		}
	}
	return nil
}

// Workers returns the workers of the server named server, by name.
func (d *Desired) Workers(server string) []Deployment {
	var out []Deployment
	for _, w := range d.Deployments {
		if w.IsWorker() && w.Server == server {
			out = append(out, w)
		}
	}
	return out
}

// ExternalDatabase reports whether GPUStack uses the database named by
// database_url rather than one in the data volume.
func (d Deployment) ExternalDatabase() bool { return d.DatabaseURL.S != "" }

// ImageTag is the tag of the image: Version with "-Variant" when set.
func (d Deployment) ImageTag() string {
	if d.Variant == "" {
		return d.Version
	}
	return d.Version + "-" + d.Variant
}

// ImageRef is Image:ImageTag.
func (d Deployment) ImageRef() string { return d.Image + ":" + d.ImageTag() }

// HostNetwork reports whether the container shares the host's network.
func (d Deployment) HostNetwork() bool { return d.NetworkMode == NetworkHost }

// HealthPort is the port on Health.Address where GPUStack answers: the
// published port, or container_port itself on the host network.
func (d Deployment) HealthPort() int {
	if d.HostNetwork() {
		return d.ContainerPort
	}
	return d.Port
}

// Value is a string that may be sensitive. Sensitive values come from
// variables declared `sensitive = true` (or anything derived from them) and
// are never rendered, logged or saved.
type Value struct {
	S         string
	Sensitive bool
}

// String never reveals a sensitive value.
func (v Value) String() string {
	if v.Sensitive {
		return "(sensitive)"
	}
	return v.S
}

// Volume is where a deployment's files live: a named Docker volume or a
// host directory (bind mount). Exactly one of Name and HostPath is set.
type Volume struct {
	Name     string
	HostPath string
	// Path is the mount point inside the container.
	Path string
	// Range is the block's source range.
	Range hcl.Range
}

// Source is the volume name or the host path, whichever is set.
func (v Volume) Source() string {
	if v.Name != "" {
		return v.Name
	}
	return v.HostPath
}

// PullPolicy says when apply pulls the image.
type PullPolicy string

const (
	PullMissing PullPolicy = "missing"
	PullAlways  PullPolicy = "always"
	PullNever   PullPolicy = "never"
)

// Policy holds the switches that allow what the tool refuses by default.
type Policy struct {
	AllowDev        bool
	AllowPrerelease bool
	AllowFloating   bool
	AllowDowngrade  bool
	Pull            PullPolicy
}

// BackupPolicy says where and when backups are taken.
type BackupPolicy struct {
	// Dir is absolute (resolved against the directory of the file that declared it).
	Dir           string
	BeforeUpgrade bool
	Keep          int
	// Method is how v2's embedded PostgreSQL is backed up: BackupPGFiles
	// (the default for v2 releases) or BackupPGDump; empty for v0.x and
	// for an external database.
	Method string
	// ExternalAcknowledged is set by external = "acknowledged": the
	// external database is backed up by its owner, gpustack-deploy takes
	// no backup of it.
	ExternalAcknowledged bool
	// ToolImage is the image whose pg_dump or mysqldump dumps the external
	// database (a default per scheme); empty without database_url or
	// when ExternalAcknowledged.
	ToolImage string
}

// Health says how apply decides the new container works.
type Health struct {
	Timeout time.Duration
	// Address is the host address used to reach the published port
	// ("127.0.0.1" unless the file says otherwise).
	Address string
}

// Network modes a deployment may use.
const (
	NetworkBridge = "bridge"
	NetworkHost   = "host"
)

// GPUs is the GPU request of a deployment, as docker run --gpus: all of
// them, a count, or device IDs. The zero value requests none.
type GPUs struct {
	All   bool
	Count int
	IDs   []string
}

// IsZero reports whether no GPU is requested.
func (g GPUs) IsZero() bool { return !g.All && g.Count == 0 && len(g.IDs) == 0 }

// String is the request as docker run --gpus writes it: "all", "2",
// "device=0,1", or "" for none.
func (g GPUs) String() string {
	switch {
	case g.All:
		return "all"
	case g.Count > 0:
		return strconv.Itoa(g.Count)
	case len(g.IDs) > 0:
		return "device=" + strings.Join(g.IDs, ",")
	}
	return ""
}

// Device is a host device made available in the container (docker run --device).
type Device struct {
	PathOnHost      string
	PathInContainer string
	// CgroupPermissions is a combination of r, w and m ("rwm" by default).
	CgroupPermissions string
}

// String is the device as docker run --device writes it.
func (d Device) String() string {
	return d.PathOnHost + ":" + d.PathInContainer + ":" + d.CgroupPermissions
}

// Mount is an extra mount of the container: a host path (bind mount) or a
// named volume, declared with a mount "<label>" block.
type Mount struct {
	Label string
	// Volume is a Docker volume name; HostPath an absolute host path. One is set.
	Volume   string
	HostPath string
	Target   string
	ReadOnly bool
	// Range is the block's source range.
	Range hcl.Range
}

// Source is the volume name or the host path, whichever is set.
func (m Mount) Source() string {
	if m.Volume != "" {
		return m.Volume
	}
	return m.HostPath
}
