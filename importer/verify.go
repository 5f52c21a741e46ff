package importer

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// AsRunning is the deployment as the container runs it: without the cache
// volume import declared for a split, which the container does not mount
// yet. Its spec's hash is what an adoption records, so that the next plan
// shows the split and nothing else.
func AsRunning(d config.Deployment, res *Result) config.Deployment {
	if res.CacheSplit {
		d.Cache = nil
	}
	return d
}

// Verify compares the container that d (loaded from the written file, with
// the secrets) describes with the inspected one, and names every
// difference. None means the container is exactly what the file says,
// apart from a declared cache split, and may be adopted.
func Verify(d config.Deployment, head string, in Input, res *Result) []string {
	want := spec.For(AsRunning(d, res), head)
	j := in.Inspection.Container
	have := engine.FromInspect(j)
	var out []string
	if want.Name != have.Name {
		out = append(out, fmt.Sprintf("container name %s, the file says %s", have.Name, want.Name))
	}
	if want.Image != have.Image {
		out = append(out, fmt.Sprintf("image %s, the file says %s", have.Image, want.Image))
	}
	if !slices.Equal(canonicalArgs(want.ArgStrings()), canonicalArgs(have.Args)) {
		out = append(out, "arguments")
	}
	var imageEnv []string
	var imageLabels map[string]string
	if img := in.Inspection.Image; img != nil && img.Config != nil {
		imageEnv, imageLabels = img.Config.Env, img.Config.Labels
	}
	if !slices.Equal(sorted(want.EnvStrings()), sorted(minus(have.Env, imageEnv))) {
		out = append(out, "environment")
	}
	user := map[string]string{}
	for k, v := range want.Labels {
		if !spec.LabelsReserved(k) {
			user[k] = v
		}
	}
	own := map[string]string{}
	for k, v := range have.Labels {
		if iv, ok := imageLabels[k]; !ok || iv != v {
			own[k] = v
		}
	}
	if !mapsEqual(user, own) {
		out = append(out, "labels")
	}
	if want.Restart != have.Restart {
		out = append(out, fmt.Sprintf("restart policy %s, the file says %s", have.Restart, want.Restart))
	}
	if !sameMounts(want.Mounts, have.Mounts) {
		out = append(out, "mounts")
	}
	if !samePorts(want.Port, have.Ports) {
		out = append(out, "published ports")
	}
	out = append(out, want.Run.Differences(have.Run)...)
	return out
}

// canonicalArgs moves --cache-dir to the end in its two-word form:
// GPUStack reads flags in any order, and spec appends --cache-dir.
func canonicalArgs(args []string) []string {
	var out, cache []string
	for i := 0; i < len(args); i++ {
		switch v, ok := strings.CutPrefix(args[i], "--cache-dir="); {
		case ok:
			cache = []string{"--cache-dir", v}
		case args[i] == "--cache-dir" && i+1 < len(args):
			cache = []string{"--cache-dir", args[i+1]}
			i++
		default:
			out = append(out, args[i])
		}
	}
	return append(out, cache...)
}

// minus is env without the entries the image sets itself.
func minus(env, image []string) []string {
	var out []string
	for _, kv := range env {
		if !slices.Contains(image, kv) {
			out = append(out, kv)
		}
	}
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func sameMounts(want []spec.Mount, have []engine.Mount) bool {
	key := func(source, target string, ro bool) string {
		return fmt.Sprintf("%s\x00%s\x00%t", source, cleanPath(target), ro)
	}
	var w, h []string
	for _, m := range want {
		w = append(w, key(m.Source(), m.Target, m.ReadOnly))
	}
	for _, m := range have {
		src := m.Name
		if m.Type == "bind" {
			src = m.Source
		}
		h = append(h, key(src, m.Destination, m.ReadOnly))
	}
	return slices.Equal(sorted(w), sorted(h))
}

func samePorts(want spec.PortBinding, have []engine.Port) bool {
	if !want.Published {
		return len(have) == 0
	}
	ip := func(s string) string {
		if s == "" {
			return config.DefaultListenAddress
		}
		return s
	}
	return len(have) == 1 && have[0].HostPort == want.HostPort && have[0].ContainerPort == want.ContainerPort && ip(have[0].HostIP) == ip(want.HostIP)
}
