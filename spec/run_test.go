package spec

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/config"
)

// TestHashOfPlainDeploymentsUnchanged pins hashes computed before the
// engine options existed: a file that uses none of them must keep its
// hash, or upgrading gpustack-deploy would replace every container.
func TestHashOfPlainDeploymentsUnchanged(t *testing.T) {
	noCache := base()
	noCache.Cache, noCache.Env = nil, nil
	bridge := base()
	bridge.NetworkMode = config.NetworkBridge
	tests := []struct {
		name     string
		d        config.Deployment
		revision string
		want     string
	}{
		{"v0.x with cache and secret", base(), "e6bf9e067296", "3781a2680a3dc9fe"},
		{"network_mode = bridge written out", bridge, "e6bf9e067296", "3781a2680a3dc9fe"},
		{"no cache, no env", noCache, "", "2460ea08465e3fe6"},
		{"defaults", config.Deployment{Name: "x", Version: "v2.2.3", ContainerName: "gpustack-x", Port: 80, ContainerPort: 80,
			ListenAddress: "0.0.0.0", Restart: "unless-stopped", Data: config.Volume{Name: "x-data"}}, "", "b57cf50dfc67dc67"},
	}
	for _, tt := range tests {
		if got := For(tt.d, tt.revision).Hash(); got != tt.want {
			t.Errorf("%s: hash %s, want %s as before the engine options", tt.name, got, tt.want)
		}
	}
}

// TestEngineOptionsChangeTheHash: each option, set alone, gives a hash of
// its own, and two values of one option differ too.
func TestEngineOptionsChangeTheHash(t *testing.T) {
	changes := []struct {
		name   string
		change func(d *config.Deployment)
	}{
		{"gpus all", func(d *config.Deployment) { d.GPUs = config.GPUs{All: true} }},
		{"gpus 2", func(d *config.Deployment) { d.GPUs = config.GPUs{Count: 2} }},
		{"gpus 1", func(d *config.Deployment) { d.GPUs = config.GPUs{Count: 1} }},
		{"gpus ids", func(d *config.Deployment) { d.GPUs = config.GPUs{IDs: []string{"0", "1"}} }},
		{"runtime", func(d *config.Deployment) { d.Runtime = "nvidia" }},
		{"host network", func(d *config.Deployment) { d.NetworkMode, d.Port, d.ListenAddress = config.NetworkHost, 0, "" }},
		{"privileged", func(d *config.Deployment) { d.Privileged = true }},
		{"ipc host", func(d *config.Deployment) { d.IpcMode = "host" }},
		{"ipc private", func(d *config.Deployment) { d.IpcMode = "private" }},
		{"shm 16g", func(d *config.Deployment) { d.ShmSize = 16 << 30 }},
		{"shm 1g", func(d *config.Deployment) { d.ShmSize = 1 << 30 }},
		{"device", func(d *config.Deployment) {
			d.Devices = []config.Device{{PathOnHost: "/dev/dri", PathInContainer: "/dev/dri", CgroupPermissions: "rwm"}}
		}},
		{"device permissions", func(d *config.Deployment) {
			d.Devices = []config.Device{{PathOnHost: "/dev/dri", PathInContainer: "/dev/dri", CgroupPermissions: "r"}}
		}},
		{"bind mount", func(d *config.Deployment) {
			d.Mounts = []config.Mount{{Label: "sock", HostPath: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
		}},
		{"read-only bind mount", func(d *config.Deployment) {
			d.Mounts = []config.Mount{{Label: "sock", HostPath: "/var/run/docker.sock", Target: "/var/run/docker.sock", ReadOnly: true}}
		}},
		{"volume mount", func(d *config.Deployment) {
			d.Mounts = []config.Mount{{Label: "models", Volume: "models", Target: "/models"}}
		}},
	}
	ref := For(base(), "e6bf9e067296").Hash()
	seen := map[string]string{ref: "no option"}
	for _, c := range changes {
		d := base()
		c.change(&d)
		h := For(d, "e6bf9e067296").Hash()
		if other, dup := seen[h]; dup {
			t.Errorf("%s gives the hash of %s (%s)", c.name, other, h)
		}
		seen[h] = c.name
	}
}

func TestForCarriesEngineOptions(t *testing.T) {
	d := base()
	d.NetworkMode, d.Port, d.ListenAddress, d.ContainerPort = config.NetworkHost, 0, "", 8080
	d.GPUs, d.Runtime, d.Privileged, d.IpcMode, d.ShmSize = config.GPUs{All: true}, "nvidia", true, "host", 16<<30
	d.Mounts = []config.Mount{{Label: "sock", HostPath: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
	c := For(d, "")
	if c.Port.Published || c.Port.ContainerPort != 8080 || c.Port.HostPort != 0 {
		t.Errorf("port %+v: nothing is published on the host network", c.Port)
	}
	want := RunOptions{
		GPUs:    []DeviceRequest{{Driver: "nvidia", Count: -1, Capabilities: [][]string{{"gpu"}}}},
		Runtime: "nvidia", NetworkMode: "host", Privileged: true, IpcMode: "host", ShmSize: 16 << 30,
	}
	if !reflect.DeepEqual(c.Run, want) {
		t.Errorf("run options %+v, want %+v", c.Run, want)
	}
	last := c.Mounts[len(c.Mounts)-1]
	if last.Role != RoleMount || last.Label != "sock" || last.Source() != "/var/run/docker.sock" {
		t.Errorf("extra mount %+v", last)
	}
	if p := For(base(), "").Port; !p.Published || p.HostPort != 8080 {
		t.Errorf("bridge port %+v: published on 8080", p)
	}
}

func TestGPURequestsRoundTrip(t *testing.T) {
	for _, g := range []config.GPUs{{}, {All: true}, {Count: 3}, {IDs: []string{"0", "GPU-1"}}} {
		got, ok := GPUsOf(GPURequests(g))
		if !ok || !reflect.DeepEqual(got, g) {
			t.Errorf("GPUsOf(GPURequests(%+v)) = %+v, %t", g, got, ok)
		}
	}
	// docker run --gpus all leaves the driver empty.
	if g, ok := GPUsOf([]DeviceRequest{{Count: -1, Capabilities: [][]string{{"gpu"}}}}); !ok || !g.All {
		t.Errorf("docker run --gpus all: %+v, %t", g, ok)
	}
	for name, reqs := range map[string][]DeviceRequest{
		"other driver":    {{Driver: "amd", Count: -1, Capabilities: [][]string{{"gpu"}}}},
		"more caps":       {{Count: -1, Capabilities: [][]string{{"gpu", "compute"}}}},
		"options":         {{Count: 1, Capabilities: [][]string{{"gpu"}}, Options: map[string]string{"a": "b"}}},
		"two requests":    {{Count: 1, Capabilities: [][]string{{"gpu"}}}, {Count: 1, Capabilities: [][]string{{"gpu"}}}},
		"count and ids":   {{Count: 1, DeviceIDs: []string{"0"}, Capabilities: [][]string{{"gpu"}}}},
		"zero count":      {{Capabilities: [][]string{{"gpu"}}}},
		"no capabilities": {{Count: -1}},
	} {
		if _, ok := GPUsOf(reqs); ok {
			t.Errorf("%s: GPUsOf accepts %+v", name, reqs)
		}
	}
}

func TestRunOptionsDifferences(t *testing.T) {
	dri := config.Device{PathOnHost: "/dev/dri", PathInContainer: "/dev/dri", CgroupPermissions: "rwm"}
	engineDefaults := RunOptions{Runtime: "runc", NetworkMode: "default", IpcMode: "private", ShmSize: DefaultShmSize}
	tests := []struct {
		name       string
		want, have RunOptions
		diff       string
	}{
		{"engine defaults match the zero value", RunOptions{}, engineDefaults, ""},
		{"bridge matches default", RunOptions{NetworkMode: "bridge"}, RunOptions{NetworkMode: "default"}, ""},
		{"docker run --gpus all matches", RunOptions{GPUs: GPURequests(config.GPUs{All: true})},
			RunOptions{GPUs: []DeviceRequest{{Count: -1, Capabilities: [][]string{{"gpu"}}}}}, ""},
		{"everything differs", RunOptions{GPUs: GPURequests(config.GPUs{Count: 1}), Runtime: "nvidia", NetworkMode: "host",
			Privileged: true, IpcMode: "host", ShmSize: 1 << 30, Devices: []config.Device{dri}}, engineDefaults,
			"gpus,runtime,network mode,privileged,ipc mode,shm size,devices"},
		{"gpu count", RunOptions{GPUs: GPURequests(config.GPUs{Count: 1})}, RunOptions{GPUs: GPURequests(config.GPUs{Count: 2})}, "gpus"},
	}
	for _, tt := range tests {
		if got := strings.Join(tt.want.Differences(tt.have), ","); got != tt.diff {
			t.Errorf("%s: differences %q, want %q", tt.name, got, tt.diff)
		}
	}
	if !slices.Equal(RunOptions{}.Differences(RunOptions{}), nil) {
		t.Error("zero values differ")
	}
}
