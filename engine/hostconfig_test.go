package engine

import (
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

func deployment() config.Deployment {
	return config.Deployment{
		Name: "gpu", Version: "v2.2.3", Image: "gpustack/gpustack", ContainerName: "gpustack-gpu",
		Port: 8080, ContainerPort: 80, ListenAddress: "127.0.0.1", NetworkMode: config.NetworkBridge, Restart: "always",
		Data: config.Volume{Name: "gpu-data"},
	}
}

// TestHostConfigPlain: a deployment without engine options is created as
// it always was: published port, engine defaults left alone.
func TestHostConfigPlain(t *testing.T) {
	s := spec.For(deployment(), "")
	host := hostConfig(s)
	want := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: "always"},
		PortBindings:  nat.PortMap{"80/tcp": []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: "8080"}}},
		Mounts:        []mount.Mount{{Type: mount.TypeVolume, Source: "gpu-data", Target: "/var/lib/gpustack"}},
	}
	if !reflect.DeepEqual(host, want) {
		t.Errorf("host config\n got %+v\nwant %+v", host, want)
	}
	if cfg := containerConfig(s); !reflect.DeepEqual(cfg.ExposedPorts, nat.PortSet{"80/tcp": {}}) {
		t.Errorf("exposed ports %v", cfg.ExposedPorts)
	}
}

// TestHostConfigGPU is the container GPUStack's docs start for a GPU
// server: docker run --gpus all --runtime nvidia --network=host
// --privileged --ipc=host --shm-size 16g --device /dev/dri
// -v /var/run/docker.sock:/var/run/docker.sock.
func TestHostConfigGPU(t *testing.T) {
	d := deployment()
	d.NetworkMode, d.Port, d.ListenAddress = config.NetworkHost, 0, ""
	d.GPUs, d.Runtime, d.Privileged, d.IpcMode, d.ShmSize = config.GPUs{All: true}, "nvidia", true, "host", 16<<30
	d.Devices = []config.Device{{PathOnHost: "/dev/dri", PathInContainer: "/dev/dri", CgroupPermissions: "rwm"}}
	d.Mounts = []config.Mount{
		{Label: "docker-sock", HostPath: "/var/run/docker.sock", Target: "/var/run/docker.sock"},
		{Label: "models", Volume: "models", Target: "/models", ReadOnly: true},
	}
	s := spec.For(d, "")
	host := hostConfig(s)
	want := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: "always"},
		NetworkMode:   "host",
		Runtime:       "nvidia",
		Privileged:    true,
		IpcMode:       "host",
		ShmSize:       16 << 30,
		Resources: container.Resources{
			DeviceRequests: []container.DeviceRequest{{Driver: "nvidia", Count: -1, Capabilities: [][]string{{"gpu"}}}},
			Devices:        []container.DeviceMapping{{PathOnHost: "/dev/dri", PathInContainer: "/dev/dri", CgroupPermissions: "rwm"}},
		},
		Binds: []string{"/var/run/docker.sock:/var/run/docker.sock"},
		Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: "gpu-data", Target: "/var/lib/gpustack"},
			{Type: mount.TypeVolume, Source: "models", Target: "/models", ReadOnly: true},
		},
	}
	if !reflect.DeepEqual(host, want) {
		t.Errorf("host config\n got %+v\nwant %+v", host, want)
	}
	if cfg := containerConfig(s); cfg.ExposedPorts != nil {
		t.Errorf("exposed ports %v on the host network", cfg.ExposedPorts)
	}
	// What the engine reports back reads as the same options.
	if diff := s.Run.Differences(runOptions(host)); len(diff) != 0 {
		t.Errorf("read back: %v differ", diff)
	}
}

func TestHostConfigGPUCountAndIDs(t *testing.T) {
	for _, tt := range []struct {
		gpus config.GPUs
		want container.DeviceRequest
	}{
		{config.GPUs{Count: 2}, container.DeviceRequest{Driver: "nvidia", Count: 2, Capabilities: [][]string{{"gpu"}}}},
		{config.GPUs{IDs: []string{"0", "1"}}, container.DeviceRequest{Driver: "nvidia", DeviceIDs: []string{"0", "1"}, Capabilities: [][]string{{"gpu"}}}},
	} {
		d := deployment()
		d.GPUs = tt.gpus
		got := hostConfig(spec.For(d, "")).DeviceRequests
		if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
			t.Errorf("gpus %s: device requests %+v, want %+v", tt.gpus, got, tt.want)
		}
	}
}
