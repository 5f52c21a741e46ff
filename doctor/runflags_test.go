package doctor

import (
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// TestDockerRunKeepsEngineOptions: the docker run that recreates a GPU
// container keeps its GPUs, runtime, network, privileges, IPC, shm,
// devices and read-only mounts; engine defaults add nothing.
func TestDockerRunKeepsEngineOptions(t *testing.T) {
	ct := &observe.Container{
		Name:   "gpustack",
		Mounts: []observe.Mount{{Source: "gpustack-data", Destination: "/var/lib/gpustack"}, {Source: "/srv/models", Destination: "/models", ReadOnly: true}},
		Run: spec.RunOptions{
			GPUs:    []spec.DeviceRequest{{Count: -1, Capabilities: [][]string{{"gpu"}}}},
			Runtime: "nvidia", NetworkMode: "host", Privileged: true, IpcMode: "host", ShmSize: 16 << 30,
			Devices: []config.Device{{PathOnHost: "/dev/dri", PathInContainer: "/dev/dri", CgroupPermissions: "rwm"}},
		},
	}
	want := "docker run -d --name gpustack -v /srv/models:/models:ro -v gpustack-data:/var/lib/gpustack --network host --gpus all " +
		"--runtime nvidia --privileged --ipc host --shm-size 17179869184 --device /dev/dri:/dev/dri:rwm gpustack/gpustack:v0.7.1"
	if got := dockerRun(ct, nil, "gpustack/gpustack:v0.7.1"); got != want {
		t.Errorf("docker run\n got %s\nwant %s", got, want)
	}
	ct.Run = spec.RunOptions{GPUs: spec.GPURequests(config.GPUs{IDs: []string{"0", "1"}}), Runtime: "runc", NetworkMode: "default", IpcMode: "private", ShmSize: spec.DefaultShmSize}
	ct.Mounts = nil
	want = `docker run -d --name gpustack --gpus '"device=0,1"' gpustack/gpustack:v0.7.1`
	if got := dockerRun(ct, nil, "gpustack/gpustack:v0.7.1"); got != want {
		t.Errorf("docker run\n got %s\nwant %s", got, want)
	}
}
