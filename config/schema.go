package config

import "github.com/hashicorp/hcl/v2"

// The structs below are the private gohcl schema of a file. Every value
// attribute is kept as *hcl.Attribute so that it is evaluated here, with the
// variables in scope and sensitivity marks checked, rather than by gohcl.

type fileBody struct {
	Variables   []*variableBlock   `hcl:"variable,block"`
	Catalogs    []*catalogBlock    `hcl:"catalog,block"`
	Hosts       []*hostBlock       `hcl:"host,block"`
	Deployments []*deploymentBlock `hcl:"gpustack,block"`
	// Workers are decoded with the same schema; decodeDeployment refuses
	// what a worker block may not say, and what only a worker may.
	Workers []*deploymentBlock `hcl:"worker,block"`
}

type hostBlock struct {
	Name       string         `hcl:"name,label"`
	DockerHost *hcl.Attribute `hcl:"docker_host,optional"`
	Address    *hcl.Attribute `hcl:"address,optional"`
	TLS        []*tlsBlock    `hcl:"tls,block"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

type tlsBlock struct {
	CAFile   *hcl.Attribute `hcl:"ca_file,optional"`
	CertFile *hcl.Attribute `hcl:"cert_file,optional"`
	KeyFile  *hcl.Attribute `hcl:"key_file,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type variableBlock struct {
	Name        string         `hcl:"name,label"`
	Description *hcl.Attribute `hcl:"description,optional"`
	Sensitive   *hcl.Attribute `hcl:"sensitive,optional"`
	Default     *hcl.Attribute `hcl:"default,optional"`
	DefRange    hcl.Range      `hcl:",def_range"`
}

type catalogBlock struct {
	File     *hcl.Attribute `hcl:"file,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type deploymentBlock struct {
	Name          string         `hcl:"name,label"`
	Host          *hcl.Attribute `hcl:"host,optional"`
	Version       *hcl.Attribute `hcl:"version,optional"`
	Variant       *hcl.Attribute `hcl:"variant,optional"`
	Image         *hcl.Attribute `hcl:"image,optional"`
	ContainerName *hcl.Attribute `hcl:"container_name,optional"`
	Port          *hcl.Attribute `hcl:"port,optional"`
	ContainerPort *hcl.Attribute `hcl:"container_port,optional"`
	ListenAddress *hcl.Attribute `hcl:"listen_address,optional"`
	Args          *hcl.Attribute `hcl:"args,optional"`
	Env           *hcl.Attribute `hcl:"env,optional"`
	Labels        *hcl.Attribute `hcl:"labels,optional"`
	Restart       *hcl.Attribute `hcl:"restart,optional"`
	NetworkMode   *hcl.Attribute `hcl:"network_mode,optional"`
	GPUs          *hcl.Attribute `hcl:"gpus,optional"`
	Runtime       *hcl.Attribute `hcl:"runtime,optional"`
	Privileged    *hcl.Attribute `hcl:"privileged,optional"`
	IpcMode       *hcl.Attribute `hcl:"ipc_mode,optional"`
	ShmSize       *hcl.Attribute `hcl:"shm_size,optional"`
	Devices       *hcl.Attribute `hcl:"devices,optional"`
	DatabaseURL   *hcl.Attribute `hcl:"database_url,optional"`
	// Server only: the credentials of the server's API.
	APIKey        *hcl.Attribute `hcl:"api_key,optional"`
	AdminPassword *hcl.Attribute `hcl:"admin_password,optional"`
	// Worker only.
	Server     *hcl.Attribute `hcl:"server,optional"`
	ServerURL  *hcl.Attribute `hcl:"server_url,optional"`
	WorkerPort *hcl.Attribute `hcl:"worker_port,optional"`
	WorkerName *hcl.Attribute `hcl:"worker_name,optional"`

	Volumes []*volumeBlock `hcl:"volume,block"`
	Mounts  []*mountBlock  `hcl:"mount,block"`
	Policy  *policyBlock   `hcl:"policy,block"`
	Backup  *backupBlock   `hcl:"backup,block"`
	Health  *healthBlock   `hcl:"health,block"`
	Rollout *rolloutBlock  `hcl:"rollout,block"`

	DefRange hcl.Range `hcl:",def_range"`
}

type volumeBlock struct {
	Kind     string         `hcl:"kind,label"`
	Name     *hcl.Attribute `hcl:"name,optional"`
	HostPath *hcl.Attribute `hcl:"host_path,optional"`
	Path     *hcl.Attribute `hcl:"path,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type mountBlock struct {
	Label    string         `hcl:"label,label"`
	Source   *hcl.Attribute `hcl:"source,optional"`
	Target   *hcl.Attribute `hcl:"target,optional"`
	ReadOnly *hcl.Attribute `hcl:"read_only,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type policyBlock struct {
	AllowDev        *hcl.Attribute `hcl:"allow_dev,optional"`
	AllowPrerelease *hcl.Attribute `hcl:"allow_prerelease,optional"`
	AllowFloating   *hcl.Attribute `hcl:"allow_floating,optional"`
	AllowDowngrade  *hcl.Attribute `hcl:"allow_downgrade,optional"`
	Pull            *hcl.Attribute `hcl:"pull,optional"`
}

type backupBlock struct {
	Dir           *hcl.Attribute `hcl:"dir,optional"`
	BeforeUpgrade *hcl.Attribute `hcl:"before_upgrade,optional"`
	Keep          *hcl.Attribute `hcl:"keep,optional"`
	Method        *hcl.Attribute `hcl:"method,optional"`
	External      *hcl.Attribute `hcl:"external,optional"`
	ToolImage     *hcl.Attribute `hcl:"tool_image,optional"`
	DefRange      hcl.Range      `hcl:",def_range"`
}

type healthBlock struct {
	Timeout *hcl.Attribute `hcl:"timeout,optional"`
	Address *hcl.Attribute `hcl:"address,optional"`
}

type rolloutBlock struct {
	MaxParallel *hcl.Attribute `hcl:"max_parallel,optional"`
	DefRange    hcl.Range      `hcl:",def_range"`
}
