package spec

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/config"
)

// RunOptions are how the engine runs a container beyond its image, args,
// env, mounts and port: the options GPUStack's GPU servers and workers are
// started with (docker run --gpus, --runtime, --network, --privileged,
// --ipc, --shm-size, --device). The zero value is Docker's default.
//
// The same type describes a desired container and, as the engine reports
// it, an observed one; Differences compares the two with Docker's defaults
// filled in.
type RunOptions struct {
	GPUs        []DeviceRequest `json:"gpus,omitempty"`
	Runtime     string          `json:"runtime,omitempty"`
	NetworkMode string          `json:"network_mode,omitempty"`
	Privileged  bool            `json:"privileged,omitempty"`
	IpcMode     string          `json:"ipc_mode,omitempty"`
	ShmSize     int64           `json:"shm_size,omitempty"` // bytes
	Devices     []config.Device `json:"devices,omitempty"`
}

// DeviceRequest is one request for devices from a device driver, as the
// Engine API's HostConfig.DeviceRequests holds it.
type DeviceRequest struct {
	Driver       string            `json:"driver,omitempty"`
	Count        int               `json:"count,omitempty"` // -1: all
	DeviceIDs    []string          `json:"device_ids,omitempty"`
	Capabilities [][]string        `json:"capabilities,omitempty"`
	Options      map[string]string `json:"options,omitempty"`
}

// GPUDriver and GPUCapability are what docker run --gpus asks the engine for.
const (
	GPUDriver     = "nvidia"
	GPUCapability = "gpu"
)

// DefaultShmSize is the /dev/shm Docker gives a container that asks for
// none (64 MiB).
const DefaultShmSize = 64 << 20

// GPURequests turns a deployment's gpus into the device request docker run
// --gpus makes: the nvidia driver, the gpu capability, and all GPUs, a
// count or device IDs. None for the zero value.
func GPURequests(g config.GPUs) []DeviceRequest {
	if g.IsZero() {
		return nil
	}
	r := DeviceRequest{Driver: GPUDriver, Capabilities: [][]string{{GPUCapability}}}
	switch {
	case g.All:
		r.Count = -1
	case g.Count > 0:
		r.Count = g.Count
	default:
		r.DeviceIDs = append([]string(nil), g.IDs...)
	}
	return []DeviceRequest{r}
}

// GPUsOf is the inverse of GPURequests: the gpus attribute that asks for
// reqs. ok is false when reqs cannot be written as gpus (another driver or
// capability, options, several requests). docker run --gpus leaves the
// driver empty, which the engine resolves to nvidia.
func GPUsOf(reqs []DeviceRequest) (g config.GPUs, ok bool) {
	switch len(reqs) {
	case 0:
		return config.GPUs{}, true
	case 1:
	default:
		return config.GPUs{}, false
	}
	r := reqs[0]
	if r.Driver != "" && r.Driver != GPUDriver || len(r.Options) > 0 || !isGPUCapability(r.Capabilities) {
		return config.GPUs{}, false
	}
	switch {
	case len(r.DeviceIDs) > 0 && r.Count == 0:
		return config.GPUs{IDs: append([]string(nil), r.DeviceIDs...)}, true
	case len(r.DeviceIDs) > 0:
		return config.GPUs{}, false
	case r.Count == -1:
		return config.GPUs{All: true}, true
	case r.Count > 0:
		return config.GPUs{Count: r.Count}, true
	}
	return config.GPUs{}, false
}

func isGPUCapability(caps [][]string) bool {
	return len(caps) == 1 && len(caps[0]) == 1 && caps[0][0] == GPUCapability
}

func runOptions(d config.Deployment) RunOptions {
	return RunOptions{
		GPUs:        GPURequests(d.GPUs),
		Runtime:     d.Runtime,
		NetworkMode: d.NetworkMode,
		Privileged:  d.Privileged,
		IpcMode:     d.IpcMode,
		ShmSize:     d.ShmSize,
		Devices:     append([]config.Device(nil), d.Devices...),
	}
}

// hash feeds the options that differ from Docker's defaults, and only
// those: see Container.hash.
func (r RunOptions) hash(field func(parts ...string)) {
	if n := r.network(); n != config.NetworkBridge {
		field("network_mode", n)
	}
	for _, g := range r.GPUs {
		field("gpus", g.key())
	}
	if r.Runtime != "" {
		field("runtime", r.Runtime)
	}
	if r.Privileged {
		field("privileged")
	}
	if r.IpcMode != "" {
		field("ipc_mode", r.IpcMode)
	}
	if r.ShmSize != 0 {
		field("shm_size", strconv.FormatInt(r.ShmSize, 10))
	}
	for _, d := range r.Devices {
		field("device", d.PathOnHost, d.PathInContainer, d.CgroupPermissions)
	}
}

// key is a canonical text of a request: the driver docker run --gpus
// leaves empty is nvidia, capabilities and IDs in order given.
func (g DeviceRequest) key() string {
	driver := g.Driver
	if driver == "" {
		driver = GPUDriver
	}
	caps := make([]string, len(g.Capabilities))
	for i, c := range g.Capabilities {
		caps[i] = strings.Join(c, "+")
	}
	opts := make([]string, 0, len(g.Options))
	for k, v := range g.Options {
		opts = append(opts, k+"="+v)
	}
	sort.Strings(opts)
	return fmt.Sprintf("driver=%s count=%d ids=%s caps=%s opts=%s",
		driver, g.Count, strings.Join(g.DeviceIDs, ","), strings.Join(caps, "|"), strings.Join(opts, ","))
}

// Normalized fills in what the engine reports for an option left at
// Docker's default, so that desired and observed options compare equal:
// network "bridge" (the engine says "default"), runtime "" for runc, IPC
// "" for private or shareable (the daemon's default), shm 0 for 64 MiB.
func (r RunOptions) Normalized() RunOptions {
	out := r
	out.NetworkMode = r.network()
	if out.Runtime == "runc" {
		out.Runtime = ""
	}
	if out.IpcMode == "private" || out.IpcMode == "shareable" {
		out.IpcMode = ""
	}
	if out.ShmSize == DefaultShmSize {
		out.ShmSize = 0
	}
	return out
}

func (r RunOptions) network() string {
	if r.NetworkMode == "" || r.NetworkMode == "default" {
		return config.NetworkBridge
	}
	return r.NetworkMode
}

// Differences names the options in which have differs from r (the desired
// options), for a reader: "gpus", "runtime", "network mode", "privileged",
// "ipc mode", "shm size", "devices". Values are not included.
func (r RunOptions) Differences(have RunOptions) []string {
	want, got := r.Normalized(), have.Normalized()
	var out []string
	if !slices.Equal(requestKeys(want.GPUs), requestKeys(got.GPUs)) {
		out = append(out, "gpus")
	}
	if want.Runtime != got.Runtime {
		out = append(out, "runtime")
	}
	if want.NetworkMode != got.NetworkMode {
		out = append(out, "network mode")
	}
	if want.Privileged != got.Privileged {
		out = append(out, "privileged")
	}
	if want.IpcMode != got.IpcMode {
		out = append(out, "ipc mode")
	}
	if want.ShmSize != got.ShmSize {
		out = append(out, "shm size")
	}
	if !slices.Equal(deviceKeys(want.Devices), deviceKeys(got.Devices)) {
		out = append(out, "devices")
	}
	return out
}

func requestKeys(reqs []DeviceRequest) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.key()
	}
	sort.Strings(out)
	return out
}

func deviceKeys(devs []config.Device) []string {
	out := make([]string, len(devs))
	for i, d := range devs {
		out[i] = d.String()
	}
	sort.Strings(out)
	return out
}
