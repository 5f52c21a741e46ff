package config

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// The engine options of a gpustack block: how Docker runs the container
// beyond image, args, env and volumes. GPUStack workers and v2 servers are
// run with GPUs, the nvidia runtime, the host network, privileges, the
// host's IPC namespace, a large /dev/shm and devices (facts §4, §6).

var (
	networkModes = []string{NetworkBridge, NetworkHost}
	ipcModes     = []string{"host", "private", "shareable", "none"}
	runtimeRe    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	gpuIDRe      = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.:-]*$`)
)

// network decodes network_mode and, on the host network, checks that
// nothing is published: port and listen_address must be left unset.
func (c *checker) network(d *Deployment, b *deploymentBlock, out *checkedDeployment) {
	if s, ok := c.enum(b.NetworkMode, "network_mode", networkModes); ok {
		d.NetworkMode = s
	} else if c.eval.present(b.NetworkMode) {
		out.portBad = true
	}
	if d.IsWorker() && !d.HostNetwork() {
		c.eval.errorf(b.NetworkMode, "Worker off the host network",
			`A worker runs on the host's network (facts: the server and the inference containers reach it at the host's address on many ports). Remove network_mode; workers default to "host".`)
		d.NetworkMode = NetworkHost
	}
	if !d.HostNetwork() {
		return
	}
	if b.NetworkMode != nil {
		out.portRange = b.NetworkMode.Expr.Range()
	}
	for _, a := range []struct {
		attr *hcl.Attribute
		name string
	}{{b.Port, "port"}, {b.ListenAddress, "listen_address"}} {
		if c.eval.present(a.attr) && d.IsWorker() {
			out.portBad = true // roleAttributes said why
		} else if c.eval.present(a.attr) {
			c.eval.errorf(a.attr, "Port published on the host network",
				`With network_mode = "host" the container uses the host's network and no port is published: GPUStack listens on container_port on every host address. Remove %s; write container_port = 8080 to change the port.`, a.name)
			out.portBad = true
		}
	}
}

// engineOptions decodes gpus, runtime, privileged, ipc_mode, shm_size and devices.
func (c *checker) engineOptions(d *Deployment, b *deploymentBlock) {
	if g, ok := c.gpus(b.GPUs); ok {
		d.GPUs = g
	}
	if s, ok := c.eval.str(b.Runtime, "runtime", `a runtime name, for example runtime = "nvidia"`); ok {
		if runtimeRe.MatchString(s) {
			d.Runtime = s
		} else {
			c.eval.errorf(b.Runtime, "Invalid runtime",
				`%q is not a container runtime name: use letters, digits, "_", "." and "-", as configured in the engine's daemon.json, for example runtime = "nvidia".`, s)
		}
	}
	if v, ok := c.eval.boolean(b.Privileged, "privileged"); ok {
		d.Privileged = v
	}
	if s, ok := c.enum(b.IpcMode, "ipc_mode", ipcModes); ok {
		d.IpcMode = s
	}
	if s, ok := c.eval.str(b.ShmSize, "shm_size", `a size, for example shm_size = "16g"`); ok {
		n, err := units.RAMInBytes(s)
		switch {
		case err != nil:
			c.eval.errorf(b.ShmSize, "Invalid shm_size", `%q is not a size. Write a number with a unit, for example shm_size = "16g" or "512m".`, s)
		case n <= 0:
			c.eval.errorf(b.ShmSize, "Invalid shm_size", `shm_size must be greater than zero, not %q. Write for example shm_size = "16g", or remove it for Docker's 64m.`, s)
		default:
			d.ShmSize = n
		}
	}
	d.Devices = c.devices(b.Devices)
}

// gpus decodes gpus = "all" | <count> | ["0", "1"].
func (c *checker) gpus(attr *hcl.Attribute) (GPUs, bool) {
	const example = `gpus = "all", gpus = 2 or gpus = ["0", "1"]`
	v, ok := c.eval.plain(attr, cty.DynamicPseudoType, "gpus", example)
	if !ok {
		return GPUs{}, false
	}
	bad := func(format string, args ...any) (GPUs, bool) {
		c.eval.errorf(attr, "Invalid gpus", format+" Write "+example+".", args...)
		return GPUs{}, false
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		s := v.AsString()
		if s == "all" {
			return GPUs{All: true}, true
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return bad(`%q is neither "all" nor a number of GPUs.`, s)
		}
		return c.gpuCount(attr, n)
	case ty == cty.Number:
		n, ok := c.eval.integer(attr, "gpus", example)
		if !ok {
			return GPUs{}, false
		}
		return c.gpuCount(attr, n)
	case ty.IsTupleType() || ty.IsListType() || ty.IsSetType():
		list, err := convert.Convert(v, cty.List(cty.String))
		if err != nil {
			return bad("a list of GPUs holds device IDs or indexes as strings: %s.", err)
		}
		var ids []string
		seen := map[string]bool{}
		for _, e := range list.AsValueSlice() {
			if e.IsNull() {
				return bad("a list of GPUs cannot hold null.")
			}
			id := e.AsString()
			if !gpuIDRe.MatchString(id) {
				return bad("%q is not a GPU index or UUID.", id)
			}
			if seen[id] {
				return bad("GPU %q is listed twice.", id)
			}
			seen[id] = true
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			return bad("an empty list requests no GPU; remove gpus to run without GPUs.")
		}
		return GPUs{IDs: ids}, true
	}
	return bad("gpus cannot be a %s.", ty.FriendlyName())
}

func (c *checker) gpuCount(attr *hcl.Attribute, n int) (GPUs, bool) {
	if n < 1 {
		c.eval.errorf(attr, "Invalid gpus", `gpus must request at least 1 GPU, not %d. Write gpus = "all" or gpus = 1, or remove gpus to run without GPUs.`, n)
		return GPUs{}, false
	}
	return GPUs{Count: n}, true
}

// devices decodes devices = ["/dev/dri", "/dev/kfd:/dev/kfd:rwm"], read as
// docker run --device reads them.
func (c *checker) devices(attr *hcl.Attribute) []Device {
	list, ok := c.eval.plain(attr, cty.List(cty.String), "devices", `a list of devices, for example devices = ["/dev/dri"]`)
	if !ok {
		return nil
	}
	var out []Device
	seen := map[string]int{}
	for i, e := range list.AsValueSlice() {
		r := elementRange(attr, i)
		if e.IsNull() {
			c.errorAt(r, "Invalid device", `devices[%d] is null. Write a device such as "/dev/dri", or remove it.`, i)
			continue
		}
		dev, err := ParseDevice(e.AsString())
		if err != nil {
			c.errorAt(r, "Invalid device", `%s. Write "/dev/dri", "/dev/kfd:/dev/kfd" or "/dev/kfd:/dev/kfd:rwm" (host path, path in the container, permissions of r, w and m).`, err)
			continue
		}
		if first, dup := seen[dev.PathInContainer]; dup {
			c.errorAt(r, "Duplicate device", "%s is already the device at devices[%d]. Remove one of them.", dev.PathInContainer, first)
			continue
		}
		seen[dev.PathInContainer] = i
		out = append(out, dev)
	}
	return out
}

// ParseDevice reads a device as docker run --device does:
// HOST[:CONTAINER][:PERMISSIONS], the container path defaulting to the
// host path and the permissions to "rwm".
func ParseDevice(s string) (Device, error) {
	d := Device{CgroupPermissions: "rwm"}
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 3:
		if !validDeviceMode(parts[2]) {
			return d, fmt.Errorf("%q: permissions %q are not a combination of r, w and m", s, parts[2])
		}
		d.CgroupPermissions = parts[2]
		d.PathInContainer = parts[1]
	case 2:
		if validDeviceMode(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 1:
	default:
		return d, fmt.Errorf("%q has too many colons", s)
	}
	d.PathOnHost = parts[0]
	if d.PathInContainer == "" {
		d.PathInContainer = d.PathOnHost
	}
	for _, p := range []string{d.PathOnHost, d.PathInContainer} {
		if !path.IsAbs(p) {
			return d, fmt.Errorf("%q: device paths must be absolute, not %q", s, p)
		}
	}
	d.PathOnHost, d.PathInContainer = path.Clean(d.PathOnHost), path.Clean(d.PathInContainer)
	return d, nil
}

// validDeviceMode reports whether mode is a non-empty combination of r, w
// and m, each at most once.
func validDeviceMode(mode string) bool {
	if mode == "" || len(mode) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, r := range mode {
		if (r != 'r' && r != 'w' && r != 'm') || seen[r] {
			return false
		}
		seen[r] = true
	}
	return true
}
