package engine

import (
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// containerConfig is the Config part of creating the container s: the
// port is exposed only when it is published.
func containerConfig(s spec.Container) *container.Config {
	cfg := &container.Config{
		Image:  s.Image,
		Cmd:    s.ArgStrings(),
		Env:    s.EnvStrings(),
		Labels: s.Labels,
	}
	if s.Port.Published {
		cfg.ExposedPorts = nat.PortSet{containerPort(s): struct{}{}}
	}
	return cfg
}

// hostConfig is the HostConfig part of creating the container s. It is
// pure so that what the engine is asked for (GPUs, runtime, network …) can
// be tested without an engine, or a GPU.
func hostConfig(s spec.Container) *container.HostConfig {
	host := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(s.Restart)},
		Runtime:       s.Run.Runtime,
		Privileged:    s.Run.Privileged,
		IpcMode:       container.IpcMode(s.Run.IpcMode),
		ShmSize:       s.Run.ShmSize,
	}
	if s.Port.Published {
		host.PortBindings = nat.PortMap{containerPort(s): []nat.PortBinding{{HostIP: s.Port.HostIP, HostPort: strconv.Itoa(s.Port.HostPort)}}}
	}
	// Bridge stays the engine's default ("") as it always was.
	if s.Run.NetworkMode != "" && s.Run.NetworkMode != config.NetworkBridge {
		host.NetworkMode = container.NetworkMode(s.Run.NetworkMode)
	}
	for _, g := range s.Run.GPUs {
		host.DeviceRequests = append(host.DeviceRequests, container.DeviceRequest{
			Driver: g.Driver, Count: g.Count, DeviceIDs: g.DeviceIDs, Capabilities: g.Capabilities, Options: g.Options,
		})
	}
	for _, d := range s.Run.Devices {
		host.Devices = append(host.Devices, container.DeviceMapping{
			PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions,
		})
	}
	for _, m := range s.Mounts {
		addMount(host, m.Volume, m.HostPath, m.Target, m.ReadOnly)
	}
	return host
}

func containerPort(s spec.Container) nat.Port {
	return nat.Port(strconv.Itoa(s.Port.ContainerPort) + "/tcp")
}

// runOptions reads the engine options back from an inspected container,
// as the engine reports them (defaults included: "default" network, runc,
// private IPC, 64 MiB shm).
func runOptions(hc *container.HostConfig) spec.RunOptions {
	if hc == nil {
		return spec.RunOptions{}
	}
	r := spec.RunOptions{
		Runtime:     hc.Runtime,
		NetworkMode: string(hc.NetworkMode),
		Privileged:  hc.Privileged,
		IpcMode:     string(hc.IpcMode),
		ShmSize:     hc.ShmSize,
	}
	for _, g := range hc.DeviceRequests {
		r.GPUs = append(r.GPUs, spec.DeviceRequest{
			Driver: g.Driver, Count: g.Count, DeviceIDs: g.DeviceIDs, Capabilities: g.Capabilities, Options: g.Options,
		})
	}
	for _, d := range hc.Devices {
		r.Devices = append(r.Devices, config.Device{
			PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions,
		})
	}
	return r
}
