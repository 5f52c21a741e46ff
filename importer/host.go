package importer

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-connections/nat"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

var restartPolicies = []string{"no", "always", "unless-stopped", "on-failure"}

// ports maps the network and the published port.
func (d *describer) ports() {
	hc := d.j.HostConfig
	switch nm := string(hc.NetworkMode); nm {
	case config.NetworkHost:
		d.draft.hostNetwork = true
	case "", "default", config.NetworkBridge:
	default:
		d.unexpressed("network %q: a file can only say bridge (the default) or host", nm)
	}
	if ns := d.j.NetworkSettings; ns != nil && len(ns.Networks) > 1 {
		d.unexpressed("the container is connected to %d networks (%s); a file connects it to one", len(ns.Networks), strings.Join(sortedKeys(ns.Networks), ", "))
	}
	if hc.PublishAllPorts {
		d.unexpressed("--publish-all")
	}
	gpustack := nat.Port(strconv.Itoa(d.draft.containerPort) + "/tcp")
	found := false
	ports := make([]string, 0, len(hc.PortBindings))
	for p := range hc.PortBindings {
		ports = append(ports, string(p))
	}
	sort.Strings(ports)
	for _, p := range ports {
		for _, b := range hc.PortBindings[nat.Port(p)] {
			hostPort, err := strconv.Atoi(b.HostPort)
			switch {
			case d.draft.hostNetwork:
				d.unexpressed("published port %s (Docker ignores it on the host network)", p)
			case nat.Port(p) == gpustack && !found && err == nil && hostPort > 0:
				found = true
				d.draft.port = hostPort
				if b.HostIP != "" && b.HostIP != config.DefaultListenAddress {
					d.draft.listen = b.HostIP
				}
			default:
				d.unexpressed("published port %s", bindingText(b.HostIP, b.HostPort, p))
			}
		}
	}
	if !d.draft.hostNetwork && !found {
		d.unexpressed("GPUStack's port %s is not published; the file publishes it on host port %d", gpustack, config.DefaultPort)
	}
}

func bindingText(ip, hostPort, containerPort string) string {
	if hostPort == "" {
		hostPort = "(any)"
	}
	if ip != "" {
		return ip + ":" + hostPort + " -> " + containerPort
	}
	return hostPort + " -> " + containerPort
}

// runOptions maps GPUs, runtime, privileged, IPC, shm and devices.
func (d *describer) runOptions() {
	r := engine.FromInspect(d.j).Run
	if g, ok := spec.GPUsOf(r.GPUs); ok {
		d.draft.gpus = g
	} else {
		d.unexpressed("device requests %+v: gpus can only ask the nvidia driver for the gpu capability (all, a count or device IDs)", r.GPUs)
	}
	n := r.Normalized()
	d.draft.runtime, d.draft.privileged, d.draft.shm = n.Runtime, n.Privileged, n.ShmSize
	switch n.IpcMode {
	case "", "host", "none":
		d.draft.ipc = n.IpcMode
	default:
		d.unexpressed("IPC mode %q", n.IpcMode)
	}
	for _, dev := range r.Devices {
		parsed, err := config.ParseDevice(dev.String())
		if err != nil || parsed != dev {
			d.unexpressed("device %s", dev)
			continue
		}
		d.draft.devices = append(d.draft.devices, dev)
	}
}

// labels keeps the container's own labels, not the image's.
func (d *describer) labels() {
	var fromImage map[string]string
	if d.img != nil && d.img.Config != nil {
		fromImage = d.img.Config.Labels
	}
	d.draft.labels = map[string]string{}
	for _, k := range sortedKeys(d.j.Config.Labels) {
		v := d.j.Config.Labels[k]
		if iv, ok := fromImage[k]; ok && iv == v {
			continue
		}
		if k == "" || spec.LabelsReserved(k) {
			d.unexpressed("label %q (reserved for gpustack-deploy)", k)
			continue
		}
		d.draft.labels[k] = v
	}
}

func (d *describer) restart() {
	p := d.j.HostConfig.RestartPolicy
	name := string(p.Name)
	if name == "" {
		name = "no"
	}
	if !slices.Contains(restartPolicies, name) {
		d.unexpressed("restart policy %q", name)
		name = config.DefaultRestart
	}
	if p.MaximumRetryCount > 0 {
		d.unexpressed("restart policy %s:%d (a file cannot limit retries)", name, p.MaximumRetryCount)
	}
	d.draft.restart = name
}

// unexpressedHost lists the settings of docker run a file cannot say.
func (d *describer) unexpressedHost() {
	hc, cfg := d.j.HostConfig, d.j.Config
	checks := []struct {
		set  bool
		what string
	}{
		{len(hc.CapAdd) > 0, "added capabilities (--cap-add " + strings.Join(hc.CapAdd, ", ") + ")"},
		{len(hc.CapDrop) > 0, "dropped capabilities (--cap-drop " + strings.Join(hc.CapDrop, ", ") + ")"},
		{hc.AutoRemove, "--rm"},
		{len(hc.Links) > 0, "--link"},
		{len(hc.VolumesFrom) > 0, "--volumes-from"},
		{len(hc.ExtraHosts) > 0, "--add-host"},
		{len(hc.DNS)+len(hc.DNSSearch)+len(hc.DNSOptions) > 0, "DNS settings (--dns …)"},
		{len(hc.GroupAdd) > 0, "--group-add"},
		{len(securityOpts(hc.SecurityOpt, hc.Privileged)) > 0, "--security-opt " + strings.Join(securityOpts(hc.SecurityOpt, hc.Privileged), ", ")},
		{len(hc.Sysctls) > 0, "--sysctl"},
		{len(hc.Tmpfs) > 0, "--tmpfs"},
		{len(hc.Ulimits) > 0, "--ulimit"},
		{hc.Init != nil && *hc.Init, "--init"},
		{hc.PidMode != "", "--pid " + string(hc.PidMode)},
		{hc.UTSMode != "", "--uts " + string(hc.UTSMode)},
		{hc.UsernsMode != "", "--userns " + string(hc.UsernsMode)},
		{hc.ReadonlyRootfs, "--read-only"},
		{hc.OomScoreAdj != 0, "--oom-score-adj"},
		{hc.Memory != 0 || hc.MemoryReservation != 0 || hc.MemorySwap != 0, "memory limits (--memory …)"},
		{hc.NanoCPUs != 0 || hc.CPUShares != 0 || hc.CPUQuota != 0 || hc.CPUPeriod != 0 || hc.CpusetCpus != "" || hc.CpusetMems != "", "CPU limits (--cpus …)"},
		{hc.PidsLimit != nil && *hc.PidsLimit > 0, "--pids-limit"},
		{len(hc.DeviceCgroupRules) > 0, "--device-cgroup-rule"},
		{hc.CgroupParent != "", "--cgroup-parent"},
		{len(hc.LogConfig.Config) > 0, "log options (--log-opt)"},
		{len(hc.StorageOpt) > 0, "--storage-opt"},
		{cfg.StopTimeout != nil, "--stop-timeout"},
		{cfg.Tty || cfg.OpenStdin, "-t / -i"},
		{cfg.Domainname != "", "--domainname"},
		{!d.draft.hostNetwork && cfg.Hostname != "" && !strings.HasPrefix(d.j.ID, cfg.Hostname), "--hostname " + cfg.Hostname},
	}
	if d.img != nil && d.img.Config != nil {
		img := d.img.Config
		checks = append(checks, []struct {
			set  bool
			what string
		}{
			{!slices.Equal(cfg.Entrypoint, img.Entrypoint), fmt.Sprintf("entrypoint %q (the image's is %q)", []string(cfg.Entrypoint), []string(img.Entrypoint))},
			{cfg.User != img.User, "--user " + cfg.User},
			{cfg.WorkingDir != img.WorkingDir, "--workdir " + cfg.WorkingDir},
			{cfg.Healthcheck != nil && !reflect.DeepEqual(cfg.Healthcheck, img.Healthcheck), "a healthcheck"},
			{cfg.StopSignal != img.StopSignal, "--stop-signal " + cfg.StopSignal},
		}...)
	}
	for _, c := range checks {
		if c.set {
			d.unexpressed("%s", c.what)
		}
	}
}

// securityOpts are the security options set by hand: the engine adds
// label=disable to every privileged container itself.
func securityOpts(opts []string, privileged bool) []string {
	var out []string
	for _, o := range opts {
		if privileged && (o == "label=disable" || o == "label:disable") {
			continue
		}
		out = append(out, o)
	}
	return out
}
