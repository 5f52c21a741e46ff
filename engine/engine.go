// Package engine is gpustack-deploy's only door to Docker: one Client per
// Docker host, speaking the Engine API through github.com/docker/docker/client
// (never the docker CLI). It translates the API's types into the small
// values the rest of the program uses and makes no decisions of its own.
package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// Client talks to one Docker host.
type Client struct {
	// Host is the name of the host in the configuration ("default" unless named).
	Host string
	// Endpoint is the daemon address, e.g. unix:///var/run/docker.sock.
	Endpoint string
	api      client.APIClient
}

// Dial connects to the Docker host at endpoint; an empty endpoint means the
// environment (DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY), as the
// docker CLI does. The API version is negotiated with the daemon.
func Dial(ctx context.Context, host, endpoint string) (*Client, error) {
	if endpoint == "" {
		return DialTarget(ctx, host, Target{})
	}
	if strings.HasPrefix(endpoint, "ssh://") {
		return DialTarget(ctx, host, Target{Endpoint: endpoint})
	}
	// --docker-host keeps the environment's TLS settings, as the docker CLI.
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation(), client.WithHost(endpoint)}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker host %s: %w", host, err)
	}
	c := &Client{Host: host, Endpoint: api.DaemonHost(), api: api}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := api.Ping(pingCtx); err != nil {
		api.Close()
		return nil, fmt.Errorf("docker host %s (%s) does not answer: %w", host, c.Endpoint, err)
	}
	api.NegotiateAPIVersion(ctx)
	return c, nil
}

// API exposes the underlying client for tests and tooling that build images.
func (c *Client) API() client.APIClient { return c.api }

// Close releases the connection.
func (c *Client) Close() error { return c.api.Close() }

// IsLocal reports whether the daemon is reached through a local socket, so
// that ports it publishes are reachable on this machine's loopback.
func (c *Client) IsLocal() bool {
	return len(c.Endpoint) > 7 && c.Endpoint[:7] == "unix://" || len(c.Endpoint) > 6 && c.Endpoint[:6] == "npipe:"
}

// Container is what the engine reports about one container.
type Container struct {
	ID        string
	Name      string
	Image     string // reference the container was created from
	ImageID   string
	State     string // created, running, restarting, exited, dead, paused
	ExitCode  int
	StartedAt time.Time
	Labels    map[string]string
	Args      []string
	Env       []string
	Mounts    []Mount
	Ports     []Port
	Restart   string
	// Run holds the engine options as the engine reports them.
	Run spec.RunOptions
}

// Running reports whether the container's process is up.
func (c *Container) Running() bool { return c.State == "running" || c.State == "restarting" }

// Mount is one mount of a container.
type Mount struct {
	Type        string // volume or bind
	Name        string // volume name, for volumes
	Source      string // host path, for binds
	Destination string
	ReadOnly    bool
}

// Port is one published port.
type Port struct {
	HostIP        string
	HostPort      int
	ContainerPort int
}

// InspectContainer returns the container named or identified by ref, or nil
// when there is none.
func (c *Client) InspectContainer(ctx context.Context, ref string) (*Container, error) {
	j, err := c.api.ContainerInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect container %s: %w", ref, err)
	}
	return FromInspect(j), nil
}

// FromInspect converts the engine's inspect response the way
// InspectContainer does.
func FromInspect(j container.InspectResponse) *Container {
	out := &Container{ID: j.ID, Name: trimSlash(j.Name), ImageID: j.Image}
	if j.Config != nil {
		out.Image = j.Config.Image
		out.Labels = j.Config.Labels
		out.Args = j.Config.Cmd
		out.Env = j.Config.Env
	}
	if j.State != nil {
		out.State = j.State.Status
		out.ExitCode = j.State.ExitCode
		if t, err := time.Parse(time.RFC3339Nano, j.State.StartedAt); err == nil {
			out.StartedAt = t
		}
	}
	if j.HostConfig != nil {
		// A container created through the API without a policy reports "".
		out.Restart = string(j.HostConfig.RestartPolicy.Name)
		if out.Restart == "" {
			out.Restart = "no"
		}
		out.Run = runOptions(j.HostConfig)
		for cport, bindings := range j.HostConfig.PortBindings {
			for _, b := range bindings {
				out.Ports = append(out.Ports, Port{HostIP: b.HostIP, HostPort: atoi(b.HostPort), ContainerPort: cport.Int()})
			}
		}
	}
	for _, m := range j.Mounts {
		out.Mounts = append(out.Mounts, Mount{Type: string(m.Type), Name: m.Name, Source: m.Source, Destination: m.Destination, ReadOnly: !m.RW})
	}
	return out
}

// Image is what the engine reports about a local image.
type Image struct {
	ID     string
	Labels map[string]string
	// Version is the image's org.opencontainers.image.version label, if any.
	Version string
	// Env is the environment the image sets.
	Env []string
}

// InspectImage returns the local image ref, or nil when it is not present.
func (c *Client) InspectImage(ctx context.Context, ref string) (*Image, error) {
	j, err := c.api.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	img := &Image{ID: j.ID}
	if j.Config != nil {
		img.Labels, img.Env = j.Config.Labels, j.Config.Env
		img.Version = j.Config.Labels["org.opencontainers.image.version"]
	}
	return img, nil
}

// Volume is what the engine reports about a named volume.
type Volume struct {
	Name   string
	Labels map[string]string
	// Mountpoint is the volume's directory on the Docker host.
	Mountpoint string
}

// InspectVolume returns the named volume, or nil when it does not exist.
func (c *Client) InspectVolume(ctx context.Context, name string) (*Volume, error) {
	v, err := c.api.VolumeInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect volume %s: %w", name, err)
	}
	return &Volume{Name: v.Name, Labels: v.Labels, Mountpoint: v.Mountpoint}, nil
}

// IsNotFound reports whether err means the object does not exist.
func IsNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// IsConflict reports whether err means the name is taken.
func IsConflict(err error) bool {
	return cerrdefs.IsConflict(err)
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0
		}
		n = n*10 + int(r-'0')
	}
	return n
}
