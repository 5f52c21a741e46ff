package planner

import (
	"sort"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// drift names what differs between the desired container and the observed
// one, without revealing values. It explains a hash mismatch; it does not
// decide anything.
func drift(desired spec.Container, ct *observe.Container) []string {
	var out []string
	if strings.Join(desired.ArgStrings(), "\x00") != strings.Join(ct.Args, "\x00") {
		out = append(out, "args")
	}
	have := map[string]string{}
	for _, kv := range ct.Env {
		k, v, _ := strings.Cut(kv, "=")
		have[k] = v
	}
	wanted := map[string]bool{}
	for _, e := range desired.Env {
		wanted[e.Name] = true
		if v, ok := have[e.Name]; !ok || v != e.Value.S {
			out = append(out, "env "+e.Name)
		}
	}
	if keys := ct.Labels[spec.LabelEnvKeys]; keys != "" {
		for _, k := range strings.Split(keys, ",") {
			if !wanted[k] {
				out = append(out, "env "+k+" (removed)")
			}
		}
	}
	if ct.Restart != desired.Restart {
		out = append(out, "restart policy")
	}
	out = append(out, mountDrift(desired.Mounts, ct.Mounts)...)
	if portDrifts(desired.Port, ct.Ports) {
		out = append(out, "port")
	}
	out = append(out, desired.Run.Differences(ct.Run)...)
	for k, v := range desired.Labels {
		if k != spec.LabelConfigHash && ct.Labels[k] != v {
			out = append(out, "label "+k)
		}
	}
	sort.Strings(out)
	return out
}

// mountDrift names "volumes" when the data or cache mount differs, and
// "mount <target>" for each extra mount added, changed or removed.
func mountDrift(want []spec.Mount, have []observe.Mount) []string {
	idx := map[string]observe.Mount{}
	for _, m := range have {
		idx[m.Destination] = m
	}
	var out []string
	volumes := false
	for _, m := range want {
		h, ok := idx[m.Target]
		delete(idx, m.Target)
		if ok && h.Source == m.Source() && h.ReadOnly == m.ReadOnly {
			continue
		}
		if m.Role == spec.RoleMount {
			out = append(out, "mount "+m.Target)
		} else {
			volumes = true
		}
	}
	for target := range idx {
		out = append(out, "mount "+target+" (removed)")
	}
	if volumes {
		out = append(out, "volumes")
	}
	return out
}

// portDrifts reports whether the published ports are not the desired
// binding: exactly it, or none on the host network.
func portDrifts(want spec.PortBinding, have []observe.Port) bool {
	if !want.Published {
		return len(have) != 0
	}
	return len(have) != 1 || have[0].HostPort != want.HostPort || have[0].ContainerPort != want.ContainerPort ||
		normalIP(have[0].HostIP) != normalIP(want.HostIP)
}

func normalIP(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}
