package spec

import "github.com/gpustack-deploy/gpustack-deploy/config"

// Labels gpustack-deploy sets on the objects it owns. Objects without
// LabelDeployment are never changed or removed.
const (
	labelPrefix = config.ReservedLabelPrefix

	// LabelDeployment names the deployment a container or volume belongs to.
	LabelDeployment = labelPrefix + "deployment"
	// LabelRole is "server" for the GPUStack container, "previous" for the
	// container kept during a replace, "data" or "cache" for volumes, and
	// "helper" for the throw-away containers used to read volumes.
	LabelRole = labelPrefix + "role"
	// LabelConfigHash is the hash of the container's desired configuration.
	LabelConfigHash = labelPrefix + "config-hash"
	// LabelVersion is the GPUStack tag the container was created for.
	LabelVersion = labelPrefix + "version"
	// LabelRevision is the Alembic head the container's release migrates to;
	// empty for dev and floating tags.
	LabelRevision = labelPrefix + "revision"
	// LabelEnvKeys lists, comma-separated, the environment names the file
	// set, so a plan can tell which ones changed without storing values.
	LabelEnvKeys = labelPrefix + "env-keys"
	// LabelServer names, on a worker's container, the server deployment
	// it registers with.
	LabelServer = labelPrefix + "server"
)

// EnvToken is the environment variable a worker reads its registration
// token from. gpustack-deploy sets it from the server's data volume when
// it creates the container; it is in no label and not in the hash.
const EnvToken = "GPUSTACK_TOKEN"

// Role values.
const (
	RoleServer   = "server"
	RoleWorker   = "worker"
	RolePrevious = "previous"
	RoleData     = "data"
	RoleCache    = "cache"
	RoleHelper   = "helper"
	// RoleMount marks an extra mount (a mount block) in a Container; it is
	// never written as a label.
	RoleMount = "mount"
)

// LabelsReserved reports whether a label key is in gpustack-deploy's namespace.
func LabelsReserved(key string) bool {
	return len(key) >= len(labelPrefix) && key[:len(labelPrefix)] == labelPrefix
}
