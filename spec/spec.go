// Package spec turns a desired deployment into the exact container
// gpustack-deploy creates for it: image, arguments, environment, mounts,
// published port, labels and a configuration hash. It is pure: the planner
// uses it to detect drift and the executor to create the container, so both
// always agree on what "the desired container" is.
package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/config"
)

// DataDir is where GPUStack keeps its state inside the container.
const DataDir = "/var/lib/gpustack"

// EnvDatabaseURL carries database_url into the container.
const EnvDatabaseURL = "GPUSTACK_DATABASE_URL"

// Container is the desired container of a deployment.
type Container struct {
	Name  string
	Image string // reference, e.g. gpustack/gpustack:v0.5.1-cpu
	// Args follow the image's entrypoint (`gpustack start` flags).
	Args []config.Value
	// Env is sorted by name.
	Env []EnvVar
	// Mounts are the data volume, the cache volume when declared, then
	// the extra mounts by label.
	Mounts []Mount
	Port   PortBinding
	// Labels include the ownership labels and the config hash.
	Labels  map[string]string
	Restart string
	// Run holds the engine options (GPUs, runtime, network, …).
	Run RunOptions
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string
	Value config.Value
}

// Mount binds a volume or host directory at Target.
type Mount struct {
	// Volume is a named volume; HostPath a bind mount. One is set.
	Volume   string
	HostPath string
	Target   string
	ReadOnly bool
	Role     string // RoleData, RoleCache or RoleMount
	// Label names an extra mount (its mount block); empty for data and cache.
	Label string
}

// Source is the volume name or host path.
func (m Mount) Source() string {
	if m.Volume != "" {
		return m.Volume
	}
	return m.HostPath
}

// PortBinding is where GPUStack listens. When Published, ContainerPort is
// published on HostIP:HostPort; otherwise (host network) GPUStack listens
// on ContainerPort on the host itself and HostIP and HostPort are empty.
type PortBinding struct {
	Published     bool
	HostIP        string
	HostPort      int
	ContainerPort int
}

// For derives the container of a deployment. revision is the Alembic head
// the release migrates to ("" when unknown, as for dev tags).
func For(d config.Deployment, revision string) Container {
	c := Container{
		Name:    d.ContainerName,
		Image:   d.ImageRef(),
		Args:    append([]config.Value(nil), d.Args...),
		Restart: d.Restart,
		Port:    PortBinding{ContainerPort: d.ContainerPort},
		Run:     runOptions(d),
	}
	if !d.HostNetwork() {
		c.Port.Published, c.Port.HostIP, c.Port.HostPort = true, d.ListenAddress, d.Port
	}
	if d.IsWorker() {
		c.Args = append(c.Args, workerArgs(d)...)
	} else if d.ContainerPort != 0 && d.ContainerPort != config.DefaultPort && !hasFlag(d.Args, "--port") {
		// GPUStack listens on 80 unless told. Config refuses a --port or
		// GPUSTACK_PORT that contradicts container_port; one that repeats
		// it (as import writes) is left as it is. The default is not
		// passed, so the containers of files that never set it keep their
		// arguments and hash.
		c.Args = append(c.Args, config.Value{S: "--port"}, config.Value{S: strconv.Itoa(d.ContainerPort)})
	}
	c.Mounts = append(c.Mounts, mountOf(d.Data, DataDir, RoleData))
	if d.Cache != nil {
		c.Mounts = append(c.Mounts, mountOf(*d.Cache, d.Cache.Path, RoleCache))
		if !strings.HasPrefix(d.Cache.Path, DataDir+"/") {
			// v0.x: the cache lives outside the data dir and GPUStack is told where.
			c.Args = append(c.Args, config.Value{S: "--cache-dir"}, config.Value{S: d.Cache.Path})
		}
	}
	for _, m := range d.Mounts {
		c.Mounts = append(c.Mounts, Mount{Volume: m.Volume, HostPath: m.HostPath, Target: m.Target, ReadOnly: m.ReadOnly, Role: RoleMount, Label: m.Label})
	}
	env := make(map[string]config.Value, len(d.Env)+1)
	for name, v := range d.Env {
		env[name] = v
	}
	if d.ExternalDatabase() {
		// config keeps GPUSTACK_DATABASE_URL out of env: database_url is the
		// only source. The value is in the hash, so a new URL replaces the
		// container; the hash reveals nothing of it.
		env[EnvDatabaseURL] = d.DatabaseURL
	}
	names := make([]string, 0, len(env))
	for name := range env {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c.Env = append(c.Env, EnvVar{Name: name, Value: env[name]})
	}
	c.Labels = map[string]string{}
	for k, v := range d.Labels {
		c.Labels[k] = v
	}
	c.Labels[LabelDeployment] = d.Name
	c.Labels[LabelRole] = RoleServer
	if d.IsWorker() {
		c.Labels[LabelRole] = RoleWorker
		c.Labels[LabelServer] = d.Server
		revision = "" // a worker has no database
	}
	c.Labels[LabelVersion] = d.ImageTag()
	c.Labels[LabelRevision] = revision
	c.Labels[LabelEnvKeys] = strings.Join(names, ",")
	c.Labels[LabelConfigHash] = c.hash()
	return c
}

func mountOf(v config.Volume, target, role string) Mount {
	return Mount{Volume: v.Name, HostPath: v.HostPath, Target: target, Role: role}
}

// hash covers everything that requires a new container when it changes.
// Sensitive values are included so that a changed secret replaces the
// container; the hash only ever lands in a label on the engine, which holds
// the secret itself in the container's environment. Options added after
// the first release (read-only mounts, the engine options) are fed only
// when they differ from the default, so that the containers of files that
// do not use them keep their hash and are not replaced by an upgrade of
// gpustack-deploy.
func (c Container) hash() string {
	h := sha256.New()
	field := func(parts ...string) {
		for _, p := range parts {
			h.Write([]byte(strconv.Itoa(len(p))))
			h.Write([]byte{':'})
			h.Write([]byte(p))
		}
		h.Write([]byte{'\n'})
	}
	field("v1", c.Name, c.Image, c.Restart)
	for _, a := range c.Args {
		field("arg", a.S)
	}
	for _, e := range c.Env {
		field("env", e.Name, e.Value.S)
	}
	for _, m := range c.Mounts {
		if m.ReadOnly {
			field("mount", m.Volume, m.HostPath, m.Target, "ro")
		} else {
			field("mount", m.Volume, m.HostPath, m.Target)
		}
	}
	field("port", c.Port.HostIP, strconv.Itoa(c.Port.HostPort), strconv.Itoa(c.Port.ContainerPort))
	c.Run.hash(field)
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		if k != LabelConfigHash {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		field("label", k, c.Labels[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Hash returns the configuration hash stored in LabelConfigHash.
func (c Container) Hash() string { return c.Labels[LabelConfigHash] }

// ArgStrings returns the arguments as passed to the engine.
func (c Container) ArgStrings() []string {
	out := make([]string, len(c.Args))
	for i, a := range c.Args {
		out[i] = a.S
	}
	return out
}

// EnvStrings returns NAME=value pairs as passed to the engine.
func (c Container) EnvStrings() []string {
	out := make([]string, len(c.Env))
	for i, e := range c.Env {
		out[i] = e.Name + "=" + e.Value.S
	}
	return out
}

// Describe renders the arguments for humans, hiding sensitive values.
func (c Container) Describe() string {
	parts := make([]string, len(c.Args))
	for i, a := range c.Args {
		parts[i] = a.String()
	}
	return fmt.Sprintf("%s %s", c.Image, strings.Join(parts, " "))
}

// hasFlag reports whether args hold flag, as "--flag value" or "--flag=value".
func hasFlag(args []config.Value, flag string) bool {
	for _, a := range args {
		if a.S == flag || strings.HasPrefix(a.S, flag+"=") {
			return true
		}
	}
	return false
}

// workerArgs are the flags that make GPUStack a worker of its server, the
// same on every recreate: the server's URL, the worker's name and port.
// The token is not among them: WithToken puts it in the environment.
func workerArgs(d config.Deployment) []config.Value {
	out := []config.Value{{S: "--server-url"}, {S: d.ServerURL}, {S: "--worker-name"}, {S: d.WorkerName}}
	if d.ContainerPort != config.DefaultWorkerPort {
		out = append(out, config.Value{S: "--worker-port"}, config.Value{S: strconv.Itoa(d.ContainerPort)})
	}
	return out
}

// WithToken returns c with the worker's registration token in its
// environment. The labels (hash and env keys) stay those of c: the token
// is read from the server when the container is created, and a changed
// token is seen by comparing digests (TokenDigest), never by the hash.
func WithToken(c Container, token string) Container {
	env := make([]EnvVar, 0, len(c.Env)+1)
	for _, e := range c.Env {
		if e.Name != EnvToken {
			env = append(env, e)
		}
	}
	c.Env = append(env, EnvVar{Name: EnvToken, Value: config.Value{S: token, Sensitive: true}})
	return c
}

// TokenDigest is what plans compare registration tokens by: a SHA-256 of
// the token, never the token. "" for no token.
func TokenDigest(token string) string {
	token = strings.TrimSpace(token)
	if token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("gpustack-deploy token\x00" + token))
	return hex.EncodeToString(sum[:8])
}
