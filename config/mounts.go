package config

import (
	"path"
	"regexp"
	"sort"
	"strings"
)

var mountLabelRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// mounts decodes the mount blocks: extra bind mounts (the Docker socket a
// v2 worker starts inference containers through, model directories) and
// named volumes. Their targets must stay clear of the data directory and
// the cache, which the volume blocks own.
func (c *checker) mounts(d *Deployment, b *deploymentBlock) {
	labels := map[string]*mountBlock{}
	targets := map[string]*mountBlock{}
	for _, mb := range b.Mounts {
		if !mountLabelRe.MatchString(mb.Label) {
			c.errorAt(mb.DefRange, "Invalid mount label",
				`%q cannot name a mount: use letters, digits, "_", "." and "-", starting with a letter or digit, for example mount "docker-sock" { ... }.`, mb.Label)
			continue
		}
		if first, dup := labels[mb.Label]; dup {
			c.errorAt(mb.DefRange, "Duplicate mount block",
				"Mount %q is declared twice in this deployment; first declared at %s. Give each mount block its own label.", mb.Label, lineRef(first.DefRange))
			continue
		}
		labels[mb.Label] = mb
		m, ok := c.mount(mb)
		if !ok {
			continue
		}
		if c.mountTargetClashes(m.Target, mb, d) {
			continue
		}
		if first, dup := targets[m.Target]; dup {
			c.errorAt(mb.Target.Expr.Range(), "Duplicate mount target",
				"Mount %q is also mounted at %s, first declared at %s. Mount each path once.", first.Label, m.Target, lineRef(first.DefRange))
			continue
		}
		targets[m.Target] = mb
		if m.Volume != "" && (m.Volume == d.Data.Name || d.Cache != nil && m.Volume == d.Cache.Name) {
			c.errorAt(mb.Source.Expr.Range(), "Mount shares a volume",
				"Docker volume %q is already this deployment's data or cache volume; mounting it twice exposes GPUStack's files at two paths. Use another volume, or remove this mount.", m.Volume)
			continue
		}
		d.Mounts = append(d.Mounts, m)
	}
	sort.Slice(d.Mounts, func(i, j int) bool { return d.Mounts[i].Label < d.Mounts[j].Label })
}

// mount decodes one mount block: source (a host path or a volume name),
// target and read_only.
func (c *checker) mount(mb *mountBlock) (Mount, bool) {
	m := Mount{Label: mb.Label, Range: mb.DefRange}
	ok := true
	for _, a := range []struct {
		present bool
		name    string
	}{{c.eval.present(mb.Source), "source"}, {c.eval.present(mb.Target), "target"}} {
		if !a.present {
			c.errorAt(mb.DefRange, "Missing mount "+a.name,
				`A mount block needs source and target, for example mount "docker-sock" { source = "/var/run/docker.sock"  target = "/var/run/docker.sock" }. Add %s.`, a.name)
			ok = false
		}
	}
	if !ok {
		return m, false
	}
	src, srcOK := c.eval.str(mb.Source, "source", `a host path or a volume name, for example source = "/var/run/docker.sock"`)
	switch {
	case !srcOK:
		ok = false
	case path.IsAbs(src):
		m.HostPath = path.Clean(src)
	case volumeNameRe.MatchString(src):
		m.Volume = src
	default:
		c.eval.errorf(mb.Source, "Invalid mount source",
			`%q is neither an absolute host path nor a Docker volume name. Write an absolute path such as source = "/srv/models" (a bind mount; Docker resolves it on the engine's host), or a volume name such as source = "models".`, src)
		ok = false
	}
	target, targetOK := c.eval.str(mb.Target, "target", `a path in the container, for example target = "/var/run/docker.sock"`)
	switch {
	case !targetOK:
		ok = false
	case !path.IsAbs(target):
		c.eval.errorf(mb.Target, "Relative mount target",
			`target is where the mount appears in the container and must be absolute. Write for example target = "/%s".`, strings.TrimLeft(target, "./"))
		ok = false
	default:
		m.Target = path.Clean(target)
	}
	if v, vOK := c.eval.boolean(mb.ReadOnly, "read_only"); vOK {
		m.ReadOnly = v
	}
	return m, ok
}

// mountTargetClashes reports a target that is, contains or lies inside the
// data directory or the cache's mount point.
func (c *checker) mountTargetClashes(target string, mb *mountBlock, d *Deployment) bool {
	r := mb.Target.Expr.Range()
	if rel := nesting(target, DataPath); rel != "" {
		c.errorAt(r, "Mount inside the data directory",
			"A mount at %s %s GPUStack's data directory %s, which the data volume owns (a mount inside it breaks the database or hides files GPUStack writes). Mount it elsewhere, for example target = \"/mnt/%s\"; for the model cache write a volume \"cache\" block.", target, rel, DataPath, mb.Label)
		return true
	}
	if d.Cache != nil && d.Cache.Path != "" {
		if rel := nesting(target, d.Cache.Path); rel != "" {
			c.errorAt(r, "Mount inside the cache",
				"A mount at %s %s the cache volume's mount point %s. Mount it elsewhere, for example target = \"/mnt/%s\".", target, rel, d.Cache.Path, mb.Label)
			return true
		}
	}
	return false
}
