package planner

import (
	"strings"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

func driftDeployment() config.Deployment {
	return config.Deployment{
		Name: "gpu", Version: "v2.2.3", Image: "gpustack/gpustack", ContainerName: "gpustack-gpu",
		Port: 8080, ContainerPort: 80, ListenAddress: "0.0.0.0", NetworkMode: config.NetworkBridge, Restart: "unless-stopped",
		Data:   config.Volume{Name: "gpu-data"},
		Mounts: []config.Mount{{Label: "sock", HostPath: "/var/run/docker.sock", Target: "/var/run/docker.sock"}},
	}
}

// observed is the container the engine would report for d, with the
// engine's own defaults filled in.
func observed(d config.Deployment) *observe.Container {
	s := spec.For(d, "")
	ct := &observe.Container{Args: s.ArgStrings(), Env: s.EnvStrings(), Labels: s.Labels, Restart: s.Restart, Run: s.Run}
	if ct.Run.Runtime == "" {
		ct.Run.Runtime = "runc"
	}
	if ct.Run.NetworkMode == config.NetworkBridge {
		ct.Run.NetworkMode = "default"
	}
	if ct.Run.IpcMode == "" {
		ct.Run.IpcMode = "private"
	}
	if ct.Run.ShmSize == 0 {
		ct.Run.ShmSize = spec.DefaultShmSize
	}
	for _, m := range s.Mounts {
		ct.Mounts = append(ct.Mounts, observe.Mount{Source: m.Source(), Destination: m.Target, ReadOnly: m.ReadOnly})
	}
	if s.Port.Published {
		ct.Ports = []observe.Port{{HostIP: s.Port.HostIP, HostPort: s.Port.HostPort, ContainerPort: s.Port.ContainerPort}}
	}
	return ct
}

func TestDriftNamesEngineOptions(t *testing.T) {
	tests := []struct {
		name   string
		change func(d *config.Deployment)
		want   string
	}{
		{"nothing", func(d *config.Deployment) {}, ""},
		{"gpus", func(d *config.Deployment) { d.GPUs = config.GPUs{All: true} }, "gpus"},
		{"runtime", func(d *config.Deployment) { d.Runtime = "nvidia" }, "runtime"},
		{"host network", func(d *config.Deployment) { d.NetworkMode, d.Port, d.ListenAddress = config.NetworkHost, 0, "" },
			"network mode, port"},
		{"privileged", func(d *config.Deployment) { d.Privileged = true }, "privileged"},
		{"ipc", func(d *config.Deployment) { d.IpcMode = "host" }, "ipc mode"},
		{"shm", func(d *config.Deployment) { d.ShmSize = 16 << 30 }, "shm size"},
		{"devices", func(d *config.Deployment) {
			d.Devices = []config.Device{{PathOnHost: "/dev/dri", PathInContainer: "/dev/dri", CgroupPermissions: "rwm"}}
		}, "devices"},
		{"mount made read-only", func(d *config.Deployment) { d.Mounts[0].ReadOnly = true }, "mount /var/run/docker.sock"},
		{"mount added", func(d *config.Deployment) {
			d.Mounts = append(d.Mounts, config.Mount{Label: "zmodels", Volume: "models", Target: "/models"})
		}, "mount /models"},
		{"mount removed", func(d *config.Deployment) { d.Mounts = nil }, "mount /var/run/docker.sock (removed)"},
		{"data volume", func(d *config.Deployment) { d.Data.Name = "other" }, "volumes"},
	}
	for _, tt := range tests {
		d := driftDeployment()
		ct := observed(d)
		tt.change(&d)
		if got := strings.Join(drift(spec.For(d, ""), ct), ", "); got != tt.want {
			t.Errorf("%s: drift %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestDriftHostNetwork: on the host network no port is published, so none
// observed is no drift and one published is.
func TestDriftHostNetwork(t *testing.T) {
	d := driftDeployment()
	d.NetworkMode, d.Port, d.ListenAddress = config.NetworkHost, 0, ""
	ct := observed(d)
	if got := drift(spec.For(d, ""), ct); len(got) != 0 {
		t.Errorf("drift %v, want none", got)
	}
	ct.Ports = []observe.Port{{HostPort: 80, ContainerPort: 80}}
	if got := strings.Join(drift(spec.For(d, ""), ct), ", "); got != "port" {
		t.Errorf("drift %q, want port", got)
	}
}
