package catalog

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/hashicorp/go-version"
)

//go:embed catalog.json
var embedded []byte

// File is the on-disk form of a catalog, embedded or user-supplied.
type File struct {
	Releases     []Release     `json:"releases"`
	Revisions    []Revision    `json:"revisions"`
	DevRevisions []DevRevision `json:"dev_revisions"`
}

var defaultCatalog *Catalog

func init() {
	c, err := Parse(embedded)
	if err != nil {
		// The embedded file is part of the binary and covered by tests.
		panic(fmt.Sprintf("embedded catalog: %v", err))
	}
	defaultCatalog = c
}

// Default returns the catalog embedded in the binary. Callers must not modify it.
func Default() *Catalog { return defaultCatalog }

// Parse decodes and validates a catalog file.
func Parse(data []byte) (*Catalog, error) {
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decode catalog: %w", err)
	}
	return build(f)
}

// WithFile returns a copy of c extended by the catalog file at path: its
// releases and revisions are added after c's, and a release already in c
// must not appear again. Revisions must continue c's chain. A revision c
// only knew from dev images leaves the dev list when the file puts it on
// the chain, since an id first seen on main can ship in a later release.
func (c *Catalog) WithFile(path string) (*Catalog, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open catalog file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(fh)
	if err != nil {
		return nil, fmt.Errorf("read catalog file %s: %w", path, err)
	}
	var extra File
	if err := json.Unmarshal(data, &extra); err != nil {
		return nil, fmt.Errorf("decode catalog file %s: %w", path, err)
	}
	merged := File{
		Releases:     append(c.Releases(), extra.Releases...),
		Revisions:    append(append([]Revision(nil), c.revisions...), extra.Revisions...),
		DevRevisions: append(c.devListExcept(extra.Revisions), extra.DevRevisions...),
	}
	out, err := build(merged)
	if err != nil {
		return nil, fmt.Errorf("catalog file %s: %w", path, err)
	}
	return out, nil
}

func (c *Catalog) devList() []DevRevision { return c.devListExcept(nil) }

// devListExcept returns the dev revisions sorted by id, leaving out those
// that appear in released.
func (c *Catalog) devListExcept(released []Revision) []DevRevision {
	skip := make(map[string]bool, len(released))
	for _, r := range released {
		skip[r.ID] = true
	}
	out := make([]DevRevision, 0, len(c.dev))
	for _, d := range c.dev {
		if !skip[d.ID] {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func build(f File) (*Catalog, error) {
	c := &Catalog{
		byTag: map[string]int{},
		byRev: map[string]int{},
		dev:   map[string]DevRevision{},
	}
	if len(f.Revisions) == 0 {
		return nil, fmt.Errorf("catalog has no revisions")
	}
	probe := Probe{Tables: map[string][]string{}}
	for i, r := range f.Revisions {
		if r.ID == "" {
			return nil, fmt.Errorf("revision %d has no id", i)
		}
		if _, dup := c.byRev[r.ID]; dup {
			return nil, fmt.Errorf("revision %s listed twice", r.ID)
		}
		want := ""
		if i > 0 {
			want = f.Revisions[i-1].ID
		}
		if r.Down != want {
			return nil, fmt.Errorf("revision %s: down revision %q, want %q (the chain must be linear and in order)", r.ID, r.Down, want)
		}
		probe = probe.apply(r)
		r.index, r.probe = i, probe
		c.byRev[r.ID] = i
		c.revisions = append(c.revisions, r)
	}
	for _, r := range f.Releases {
		v, err := version.NewVersion(r.Tag)
		if err != nil {
			return nil, fmt.Errorf("release %q: %w", r.Tag, err)
		}
		if _, dup := c.byTag[r.Tag]; dup {
			return nil, fmt.Errorf("release %s listed twice", r.Tag)
		}
		// The tag must read as what it is wherever a tag is classified:
		// "v2" or "v2.3.0-beta1" would be an unknown version, "v2.3" a
		// floating tag, so that version = "<tag>" could not name it.
		if t, want := ClassifyTag(r.Tag), classOf(v); t.Class != want || t.Variant != "" {
			return nil, fmt.Errorf("release %q: not a release tag (vX.Y.Z or X.Y.Z, rcN for a release candidate); it reads as %s", r.Tag, describeClass(t))
		}
		if _, ok := c.byRev[r.Head]; !ok {
			return nil, fmt.Errorf("release %s: head %q is not on the revision chain", r.Tag, r.Head)
		}
		switch r.Engine {
		case EngineSQLite, EngineEmbeddedPostgres:
		default:
			return nil, fmt.Errorf("release %s: unknown engine %q", r.Tag, r.Engine)
		}
		r.version = v
		c.byTag[r.Tag] = -1
		c.releases = append(c.releases, r)
	}
	sortReleases(c.releases)
	for i, r := range c.releases {
		c.byTag[r.Tag] = i
	}
	for _, d := range f.DevRevisions {
		if _, onChain := c.byRev[d.ID]; onChain {
			return nil, fmt.Errorf("dev revision %s is also on the release chain", d.ID)
		}
		c.dev[d.ID] = d
	}
	return c, nil
}

// classOf is the class a release tag of version v must have.
func classOf(v *version.Version) TagClass {
	if v.Prerelease() != "" {
		return TagPrerelease
	}
	return TagRelease
}

func describeClass(t Tag) string {
	if t.Variant != "" {
		return fmt.Sprintf("a %s tag with variant %q", t.Class, t.Variant)
	}
	if t.Class == TagUnknown {
		return "no GPUStack tag"
	}
	return "a " + t.Class.String() + " tag"
}
