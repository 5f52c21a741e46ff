package config

import (
	"path"
	"regexp"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// Mount points inside the container.
const (
	// DataPath is where the data volume is mounted: GPUStack's default
	// --data-dir in every release.
	DataPath = "/var/lib/gpustack"
	// CachePathSQLite is the default cache mount point for v0.x images. It
	// lies outside DataPath (facts §5.2); the tool passes it as --cache-dir.
	CachePathSQLite = "/var/lib/gpustack-cache"
	// CachePathPostgres is the default cache mount point for v2 images:
	// GPUStack's default cache directory, so no flag is needed.
	CachePathPostgres = "/var/lib/gpustack/cache"
)

var volumeNameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// volumes decodes the volume blocks of a deployment into d.Data and d.Cache.
func (c *checker) volumes(d *Deployment, b *deploymentBlock, rel *catalog.Release, era catalog.Engine, eraKnown bool) {
	seen := map[string]*volumeBlock{}
	for _, vb := range b.Volumes {
		if vb.Kind != "data" && vb.Kind != "cache" {
			c.errorAt(vb.DefRange, "Unknown volume",
				`There is no volume %q. Write volume "data" { ... } for GPUStack's data directory or volume "cache" { ... } for the model cache.`, vb.Kind)
			continue
		}
		if first, dup := seen[vb.Kind]; dup {
			c.errorAt(vb.DefRange, "Duplicate volume block",
				"Volume %q is declared twice in this deployment; first declared at %s. Remove one of the blocks.", vb.Kind, lineRef(first.DefRange))
			continue
		}
		seen[vb.Kind] = vb
		v := c.volume(vb)
		if vb.Kind == "data" {
			v.Path = DataPath
			d.Data = v
		} else {
			d.Cache = &v
		}
	}
	if seen["data"] == nil {
		c.errorAt(b.DefRange, "Missing data volume",
			`Every deployment keeps GPUStack's data directory in a volume. Add volume "data" { name = "gpustack-%s-data" }, or host_path = "/an/absolute/dir"; it is mounted at %s.`, b.Name, DataPath)
	}
	if d.Cache == nil {
		return
	}
	cache := seen["cache"]
	if d.Cache.Path == "" && eraKnown {
		d.Cache.Path = CachePathPostgres
		if era == catalog.EngineSQLite {
			d.Cache.Path = CachePathSQLite
		}
	}
	if rel != nil && !rel.CacheDirFlag {
		c.errorAt(cache.DefRange, "Cache volume not supported",
			`GPUStack %s has no --cache-dir flag (it came in 0.3.2), so a separate cache cannot be used. Remove the cache volume, or use version = "0.3.2" or later.`, rel.Tag)
	} else if eraKnown && d.Cache.Path != "" {
		c.checkCachePath(d.Cache.Path, cache, era)
	}
	if d.Data.Name != "" && d.Data.Name == d.Cache.Name {
		c.errorAt(cache.DefRange, "Data and cache share a volume",
			"The cache volume is the data volume %q. Give the cache its own volume name, or remove the cache volume to keep the cache inside the data directory.", d.Data.Name)
	}
	if d.Data.HostPath != "" && d.Cache.HostPath != "" {
		if rel := nesting(d.Cache.HostPath, d.Data.HostPath); rel != "" {
			c.errorAt(cache.DefRange, "Data and cache share a directory",
				"The cache host_path %s %s the data host_path %s, so one volume's files would show up in the other. Use two directories, neither inside the other.", d.Cache.HostPath, rel, d.Data.HostPath)
		}
	}
}

// volume decodes one volume block; Path is left empty when not written.
func (c *checker) volume(vb *volumeBlock) Volume {
	v := Volume{Range: vb.DefRange}
	name, nameOK := c.eval.str(vb.Name, "name", `a Docker volume name, for example name = "gpustack-data"`)
	host, hostOK := c.eval.str(vb.HostPath, "host_path", `an absolute host directory, for example host_path = "/srv/gpustack"`)
	hasName, hasHost := c.eval.present(vb.Name), c.eval.present(vb.HostPath)
	switch {
	case hasName && hasHost:
		c.errorAt(vb.DefRange, "Conflicting volume source",
			`A volume is either a Docker volume or a host directory. Write name = "..." or host_path = "/...", not both.`)
		return v
	case !hasName && !hasHost:
		c.errorAt(vb.DefRange, "Missing volume source",
			`Say where the volume's files live: name = "gpustack-%s" for a Docker volume, or host_path = "/an/absolute/dir" for a host directory.`, vb.Kind)
		return v
	}
	if nameOK {
		if volumeNameRe.MatchString(name) {
			v.Name = name
		} else {
			c.eval.errorf(vb.Name, "Invalid volume name",
				`%q is not a Docker volume name: use at least 2 letters, digits, "_", "." and "-", starting with a letter or digit, for example name = "gpustack-%s".`, name, vb.Kind)
		}
	}
	if hostOK {
		if path.IsAbs(host) {
			v.HostPath = path.Clean(host)
		} else {
			c.eval.errorf(vb.HostPath, "Relative host path",
				`host_path must be absolute, since Docker resolves it on the engine's host: write for example host_path = "/srv/gpustack/%s", not %q.`, vb.Kind, host)
		}
	}
	if vb.Path != nil && vb.Kind == "data" {
		c.errorAt(vb.Path.Range, "Mount point of the data volume is fixed",
			"The data volume is always mounted at %s, GPUStack's data directory. Remove path from this block.", DataPath)
		return v
	}
	if p, ok := c.eval.str(vb.Path, "path", `a mount point, for example path = "/var/lib/gpustack-cache"`); ok {
		if path.IsAbs(p) {
			v.Path = path.Clean(p)
		} else {
			c.eval.errorf(vb.Path, "Relative mount point",
				`path is where the cache is mounted in the container and must be absolute. Write for example path = %q.`, CachePathSQLite)
		}
	}
	return v
}

// checkCachePath applies facts §5.2: in v0.x the cache must live outside the
// data directory; in v2 it is the data directory's cache/ or outside it.
func (c *checker) checkCachePath(p string, cache *volumeBlock, era catalog.Engine) {
	r := cache.DefRange
	if cache.Path != nil {
		r = cache.Path.Expr.Range()
	}
	switch rel := nesting(p, DataPath); {
	case rel == "is" || rel == "contains":
		c.errorAt(r, "Cache mount point hides the data directory",
			"A cache mounted at %s would cover the data volume at %s. Mount it elsewhere, for example path = %q.", p, DataPath, defaultCachePath(era))
	case rel == "":
	case era == catalog.EngineSQLite:
		c.errorAt(r, "Cache inside the data directory",
			"For v0.x images do not mount the cache inside the data directory %s; mount it at a separate path, which gpustack-deploy passes as --cache-dir. Write path = %q or remove path.", DataPath, CachePathSQLite)
	case p != CachePathPostgres:
		c.errorAt(r, "Cache inside the data directory",
			"Inside %s a v2 image only expects the cache at %s; other directories there belong to GPUStack (a mount at postgresql/ breaks the database). Write path = %q, or a path outside %s.", DataPath, CachePathPostgres, CachePathPostgres, DataPath)
	}
}

func defaultCachePath(era catalog.Engine) string {
	if era == catalog.EngineSQLite {
		return CachePathSQLite
	}
	return CachePathPostgres
}

// nesting says how clean absolute path a relates to b: "is", "is inside",
// "contains", or "" when they are apart.
func nesting(a, b string) string {
	switch {
	case a == b:
		return "is"
	case within(a, b):
		return "is inside"
	case within(b, a):
		return "contains"
	}
	return ""
}

// within reports whether a lies strictly below b.
func within(a, b string) bool {
	if b == "/" {
		return a != "/"
	}
	return len(a) > len(b) && a[:len(b)] == b && a[len(b)] == '/'
}
