package importer

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
)

// volumeDecl is a volume block: a Docker volume or a host directory.
type volumeDecl struct {
	name, hostPath string
	path           string // cache mount point, "" for the default
	isNew          bool   // declared by import, not mounted by the container
}

// mountDecl is a mount block.
type mountDecl struct {
	label, source, target string
	readOnly              bool
}

func cleanPath(p string) string { return path.Clean(p) }

// within reports whether a lies strictly below b.
func within(a, b string) bool { return strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/") }

func sourceOf(m container.MountPoint) (name, hostPath string) {
	if m.Type == mount.TypeBind {
		return "", m.Source
	}
	return m.Name, ""
}

// volumes finds the data mount, the model cache and the other mounts.
func (d *describer) volumes() error {
	if !d.cacheFlag {
		d.cacheDir = path.Join(d.dataDir, "cache")
	}
	d.accounted = map[string]bool{}
	byTarget := map[string]container.MountPoint{}
	for _, m := range d.j.Mounts {
		byTarget[cleanPath(m.Destination)] = m
	}
	data, ok := byTarget[d.dataDir]
	if !ok || (data.Type != mount.TypeVolume && data.Type != mount.TypeBind) {
		return fmt.Errorf("GPUStack's data directory %s in container %s is in no volume: its database lives in the container and would be lost with it. Copy it into a volume first (docker cp), or start the container with -v gpustack-data:%s", d.dataDir, d.draft.containerName, config.DataPath)
	}
	d.accounted[d.dataDir] = true
	d.draft.data.name, d.draft.data.hostPath = sourceOf(data)
	d.cache(byTarget)
	d.extraMounts()
	return nil
}

// cache declares the model cache: the mount at the cache directory, or,
// when the cache is inside the data volume (GPUStack's documented
// one-liner), a new volume the next plan moves it into.
func (d *describer) cache(byTarget map[string]container.MountPoint) {
	if m, ok := byTarget[d.cacheDir]; ok && (m.Type == mount.TypeVolume || m.Type == mount.TypeBind) {
		d.accounted[d.cacheDir] = true
		switch {
		case d.cacheDir == config.DataPath || within(config.DataPath, d.cacheDir):
			d.unexpressed("the model cache is mounted at %s, which hides the data directory", d.cacheDir)
			return
		case d.rel != nil && !d.rel.CacheDirFlag:
			d.unexpressed("a volume is mounted at the cache directory %s, but GPUStack %s has no --cache-dir, so the file cannot declare it as the cache", d.cacheDir, d.rel.Tag)
			return
		case within(d.cacheDir, config.DataPath) && (d.era == catalog.EngineSQLite || d.cacheDir != config.CachePathPostgres):
			d.unexpressed("the model cache is mounted inside the data directory at %s; gpustack-deploy mounts it outside (v0.x: %s, passed as --cache-dir) or, for v2, only at %s", d.cacheDir, config.CachePathSQLite, config.CachePathPostgres)
			return
		}
		v := volumeDecl{}
		v.name, v.hostPath = sourceOf(m)
		if d.cacheDir != defaultCachePath(d.era) {
			v.path = d.cacheDir
		}
		d.draft.cache = &v
		return
	}
	if d.cacheFlag && !within(d.cacheDir, d.dataDir) {
		d.unexpressed("the model cache (--cache-dir %s) is in no volume: it lives in the container and is lost when the container is replaced", d.cacheDir)
	}
	if d.rel != nil && !d.rel.CacheDirFlag {
		why := fmt.Sprintf("the model cache stays in the data volume: GPUStack %s has no --cache-dir (it came in 0.3.2), so it cannot have a volume of its own", d.rel.Tag)
		d.note("%s", why)
		d.draft.noCache = why
		return
	}
	v := volumeDecl{isNew: true}
	if d.draft.data.name != "" {
		v.name = newVolumeName(d.draft.data.name + "-cache")
	} else {
		v.hostPath = d.draft.data.hostPath + "-cache"
	}
	d.draft.cache = &v
	d.res.CacheSplit = true
	d.note("the model cache is inside the data volume: the file gives it a volume of its own, %s, and the next plan moves the cache there (copied and checked file by file, then the container is replaced to mount it)", v.name+v.hostPath)
}

func defaultCachePath(era catalog.Engine) string {
	if era == catalog.EngineSQLite {
		return config.CachePathSQLite
	}
	return config.CachePathPostgres
}

var volumeNameRe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func newVolumeName(s string) string { return volumeNameRe.ReplaceAllString(s, "-") }

// extraMounts declares every other volume or bind mount as a mount block.
func (d *describer) extraMounts() {
	labels := map[string]bool{}
	for _, m := range d.j.Mounts {
		target := cleanPath(m.Destination)
		if d.accounted[target] {
			continue
		}
		switch {
		case m.Type != mount.TypeVolume && m.Type != mount.TypeBind:
			d.unexpressed("a %s mount at %s", m.Type, target)
			continue
		case target == config.DataPath || within(target, config.DataPath) || within(config.DataPath, target):
			d.unexpressed("a mount at %s, inside or over the data directory %s", target, config.DataPath)
			continue
		case d.draft.cache != nil && d.draft.cache.path != "" && (target == d.draft.cache.path || within(target, d.draft.cache.path)):
			d.unexpressed("a mount at %s, inside the model cache %s", target, d.draft.cache.path)
			continue
		}
		name, host := sourceOf(m)
		if name != "" && (name == d.draft.data.name || d.draft.cache != nil && name == d.draft.cache.name) {
			d.unexpressed("volume %s mounted a second time, at %s", name, target)
			continue
		}
		label := mountLabel(target)
		for n := 2; labels[label]; n++ {
			label = fmt.Sprintf("%s-%d", mountLabel(target), n)
		}
		labels[label] = true
		d.draft.mounts = append(d.draft.mounts, mountDecl{label: label, source: name + host, target: target, readOnly: !m.RW})
	}
}

var labelRe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// mountLabel names a mount after its target: /var/run/docker.sock →
// docker-sock, /data/models → models.
func mountLabel(target string) string {
	base := strings.TrimSuffix(path.Base(target), ".sock")
	if base != path.Base(target) {
		base += "-sock"
	}
	base = strings.Trim(labelRe.ReplaceAllString(base, "-"), "-_.")
	if base == "" {
		return "mount"
	}
	return base
}
