// Package catalog holds what gpustack-deploy knows about GPUStack releases:
// every published tag with its Alembic head, database engine and image
// variants, the linear revision chain with its hazards, and a schema probe
// per revision (the tables and columns that must exist once a database is
// stamped with it).
//
// The catalog is data plus lookups. It performs no I/O beyond reading its
// embedded file and, when asked, one user-supplied file that extends it with
// releases newer than the binary.
package catalog

import (
	"fmt"
	"sort"

	"github.com/hashicorp/go-version"
)

// Engine is the database a release uses by default.
type Engine string

const (
	// EngineSQLite is the SQLite file database.db in the data directory (0.1.0–v0.7.1).
	EngineSQLite Engine = "sqlite"
	// EngineEmbeddedPostgres is the PostgreSQL 17 bundled in the v2 image,
	// with its data under postgresql/data in the data directory (v2.0.0+).
	EngineEmbeddedPostgres Engine = "embedded-postgresql"
)

// Release is one published GPUStack tag.
type Release struct {
	// Tag is the git tag and the image tag without a variant suffix, e.g. "v0.5.1" or "0.3.2".
	Tag string `json:"tag"`
	// Head is the Alembic head revision of the tag's tree.
	Head string `json:"head"`
	// Engine is the default database of the release.
	Engine Engine `json:"engine"`
	// Variants lists the image suffixes built for the tag; "" is the default image.
	// An empty list means no Docker image was published for the tag (0.1.0).
	Variants []string `json:"variants"`
	// MigrationFailureExitsNonZero is true from v2.1.1 on; before that a
	// failed migration is logged and the process exits 0.
	MigrationFailureExitsNonZero bool `json:"migration_failure_exits_non_zero"`
	// WAL is true when the release opens SQLite in WAL mode (v0.7.0+), so a
	// consistent copy needs database.db-wal and -shm as well.
	WAL bool `json:"wal"`
	// CacheDirFlag is true when `gpustack start` accepts --cache-dir (0.3.2+).
	CacheDirFlag bool `json:"cache_dir_flag"`

	version *version.Version
}

// Version returns the parsed version of the tag.
func (r Release) Version() *version.Version { return r.version }

// Prerelease reports whether the tag is a release candidate.
func (r Release) Prerelease() bool { return r.version.Prerelease() != "" }

// HasVariant reports whether an image with the given suffix was built for the tag.
func (r Release) HasVariant(variant string) bool {
	for _, v := range r.Variants {
		if v == variant {
			return true
		}
	}
	return false
}

// ImageTag is the image tag for the release and variant, e.g. "v0.5.1-cpu".
func (r Release) ImageTag(variant string) string {
	if variant == "" {
		return r.Tag
	}
	return r.Tag + "-" + variant
}

// Hazard marks a revision whose upgrade does more than add schema.
type Hazard struct {
	// DeletesRows describes rows the upgrade deletes, if any.
	DeletesRows string `json:"deletes_rows,omitempty"`
	// TouchesCache describes changes the upgrade makes in the model cache, if any.
	TouchesCache string `json:"touches_cache,omitempty"`
	// EditedInPlace lists tags at which the revision's file changed without a
	// new revision id: the same stamp can mean different schemas.
	EditedInPlace []string `json:"edited_in_place,omitempty"`
}

// Revision is one Alembic revision on the release chain.
type Revision struct {
	ID       string `json:"id"`
	Down     string `json:"down,omitempty"`
	Message  string `json:"message"`
	FirstTag string `json:"first_tag"`
	Hazard
	// Adds, Drops and Renames describe the schema delta of the upgrade;
	// the cumulative result is the revision's Probe.
	Adds       map[string][]string `json:"adds,omitempty"`
	Drops      map[string][]string `json:"drops,omitempty"`
	DropTables []string            `json:"drop_tables,omitempty"`
	Renames    []Rename            `json:"renames,omitempty"`

	index int
	probe Probe
}

// Rename moves a table or a column. Column is empty for a table rename.
type Rename struct {
	Table  string `json:"table"`
	Column string `json:"column,omitempty"`
	To     string `json:"to"`
}

// Index is the revision's position on the chain, from 0.
func (r Revision) Index() int { return r.index }

// Probe returns the tables and columns a database stamped with the revision must have.
func (r Revision) Probe() Probe { return r.probe }

// DevRevision is a revision that only ever appeared on main or dev images.
type DevRevision struct {
	ID   string `json:"id"`
	Note string `json:"note"`
}

// Catalog is the set of known releases and revisions. The zero value is empty;
// use Default or Parse.
type Catalog struct {
	releases  []Release // sorted by version, ascending
	byTag     map[string]int
	revisions []Revision // chain order, root first
	byRev     map[string]int
	dev       map[string]DevRevision
}

// Releases returns every release in ascending version order.
func (c *Catalog) Releases() []Release { return append([]Release(nil), c.releases...) }

// Release looks a tag up. Tags are matched exactly ("0.3.2", "v0.4.0").
func (c *Catalog) Release(tag string) (Release, bool) {
	i, ok := c.byTag[tag]
	if !ok {
		return Release{}, false
	}
	return c.releases[i], true
}

// Revision looks a revision on the release chain up.
func (c *Catalog) Revision(id string) (Revision, bool) {
	i, ok := c.byRev[id]
	if !ok {
		return Revision{}, false
	}
	return c.revisions[i], true
}

// DevRevision reports whether id is a revision known to exist only on dev images.
func (c *Catalog) DevRevision(id string) (DevRevision, bool) {
	d, ok := c.dev[id]
	return d, ok
}

// Head returns the last revision of the chain.
func (c *Catalog) Head() Revision { return c.revisions[len(c.revisions)-1] }

// Crossed returns the revisions an upgrade from revision from to revision to
// applies, in order: from is excluded, to included. from may be empty for a
// fresh database. It returns an error when either is unknown or to is not
// after from.
func (c *Catalog) Crossed(from, to string) ([]Revision, error) {
	start := -1
	if from != "" {
		i, ok := c.byRev[from]
		if !ok {
			return nil, fmt.Errorf("revision %q is not on the release chain", from)
		}
		start = i
	}
	end, ok := c.byRev[to]
	if !ok {
		return nil, fmt.Errorf("revision %q is not on the release chain", to)
	}
	if end < start {
		return nil, fmt.Errorf("revision %q comes before %q", to, from)
	}
	return append([]Revision(nil), c.revisions[start+1:end+1]...), nil
}

// ReleasesWithHead returns the final (non-rc) releases whose head is the revision,
// in ascending order.
func (c *Catalog) ReleasesWithHead(rev string) []Release {
	var out []Release
	for _, r := range c.releases {
		if r.Head == rev && !r.Prerelease() {
			out = append(out, r)
		}
	}
	return out
}

// FirstReleaseWith returns the earliest final release whose chain contains rev.
func (c *Catalog) FirstReleaseWith(rev string) (Release, bool) {
	ri, ok := c.byRev[rev]
	if !ok {
		return Release{}, false
	}
	for _, r := range c.releases {
		if r.Prerelease() {
			continue
		}
		if hi, ok := c.byRev[r.Head]; ok && hi >= ri {
			return r, true
		}
	}
	return Release{}, false
}

// LatestFinal returns the newest final release, the one "latest" points at,
// used to explain floating tags.
func (c *Catalog) LatestFinal() Release {
	for i := len(c.releases) - 1; i >= 0; i-- {
		if !c.releases[i].Prerelease() {
			return c.releases[i]
		}
	}
	return c.releases[len(c.releases)-1]
}

func sortReleases(rs []Release) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].version.LessThan(rs[j].version) })
}
