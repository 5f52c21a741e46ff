package catalog

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The embedded file must use exactly the field names of File: a typo would
// otherwise be dropped silently by encoding/json.
func TestEmbeddedFileHasNoUnknownFields(t *testing.T) {
	dec := json.NewDecoder(bytes.NewReader(embedded))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("decode embedded catalog strictly: %v", err)
	}
	if _, err := Parse(embedded); err != nil {
		t.Fatalf("Parse(embedded): %v", err)
	}
}

func TestDefaultSize(t *testing.T) {
	c := Default()
	if got, want := len(c.Releases()), 63; got != want {
		t.Errorf("releases = %d, want %d", got, want)
	}
	head := c.Head()
	if head.ID != "367a3982fcde" || head.Index() != 32 {
		t.Errorf("Head() = %s at %d, want 367a3982fcde at 32", head.ID, head.Index())
	}
	root, ok := c.Revision("1dd9fa5b38ff")
	if !ok || root.Index() != 0 || root.Down != "" {
		t.Errorf("root revision = %+v, %v; want 1dd9fa5b38ff at 0 with no down", root.ID, ok)
	}
	if got := len(c.devList()); got != 26 {
		t.Errorf("dev revisions = %d, want 26", got)
	}
}

func TestEveryReleaseHeadIsOnTheChain(t *testing.T) {
	c := Default()
	for _, r := range c.Releases() {
		if _, ok := c.Revision(r.Head); !ok {
			t.Errorf("%s: head %s not on the chain", r.Tag, r.Head)
		}
	}
}

func TestHeadsNeverGoBackwards(t *testing.T) {
	c := Default()
	prev := -1
	prevTag := ""
	for _, r := range c.Releases() {
		rev, _ := c.Revision(r.Head)
		if rev.Index() < prev {
			t.Errorf("%s (head %s) is behind %s", r.Tag, r.Head, prevTag)
		}
		prev, prevTag = rev.Index(), r.Tag
	}
}

func TestReleasesAreSortedByVersion(t *testing.T) {
	rs := Default().Releases()
	want := []string{"0.1.0rc2", "0.1.0", "0.1.1rc1"}
	for i, tag := range want {
		if rs[i].Tag != tag {
			t.Errorf("release %d = %s, want %s", i, rs[i].Tag, tag)
		}
	}
	// The "v" prefix that starts at v0.4.0 must not disturb the order.
	i32 := indexOfTag(t, rs, "0.3.2")
	if rs[i32+1].Tag != "v0.4.0rc1" {
		t.Errorf("after 0.3.2 comes %s, want v0.4.0rc1", rs[i32+1].Tag)
	}
	if last := rs[len(rs)-1].Tag; last != "v2.2.3" {
		t.Errorf("last release = %s, want v2.2.3", last)
	}
}

func indexOfTag(t *testing.T, rs []Release, tag string) int {
	t.Helper()
	for i, r := range rs {
		if r.Tag == tag {
			return i
		}
	}
	t.Fatalf("release %s not found", tag)
	return -1
}

func TestReleaseSpotChecks(t *testing.T) {
	tests := []struct {
		tag         string
		head        string
		engine      Engine
		prerelease  bool
		wal         bool
		cacheDir    bool
		exitNonZero bool
	}{
		{"0.1.0", "1dd9fa5b38ff", EngineSQLite, false, false, false, false},
		{"0.3.1", "0f7dde8b3c4b", EngineSQLite, false, false, false, false},
		{"0.3.2rc1", "0f7dde8b3c4b", EngineSQLite, true, false, true, false},
		{"0.3.2", "0f7dde8b3c4b", EngineSQLite, false, false, true, false},
		{"v0.5.1", "e6bf9e067296", EngineSQLite, false, false, true, false},
		{"v0.6.0", "c45e397531d1", EngineSQLite, false, false, true, false},
		{"v0.6.2", "c45e397531d1", EngineSQLite, false, false, true, false},
		{"v0.7.0rc1", "cbbc03c88985", EngineSQLite, true, true, true, false},
		{"v0.7.0", "cbbc03c88985", EngineSQLite, false, true, true, false},
		{"v0.7.1", "d19176de3b74", EngineSQLite, false, true, true, false},
		{"v2.0.0rc1", "e30134bd18dc", EngineEmbeddedPostgres, true, false, true, false},
		{"v2.0.3", "2aed534bd7b2", EngineEmbeddedPostgres, false, false, true, false},
		{"v2.1.0", "53667f33f000", EngineEmbeddedPostgres, false, false, true, false},
		{"v2.1.1rc1", "8ad0f94c92e8", EngineEmbeddedPostgres, true, false, true, true},
		{"v2.1.1", "8ad0f94c92e8", EngineEmbeddedPostgres, false, false, true, true},
		{"v2.2.0rc1", "61929acb0676", EngineEmbeddedPostgres, true, false, true, true},
		{"v2.2.0", "b2c3d4e5f6a7", EngineEmbeddedPostgres, false, false, true, true},
		{"v2.2.3", "c4d7e8f9a0b1", EngineEmbeddedPostgres, false, false, true, true},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			r, ok := c.Release(tt.tag)
			if !ok {
				t.Fatalf("release %s not found", tt.tag)
			}
			if r.Head != tt.head {
				t.Errorf("head = %s, want %s", r.Head, tt.head)
			}
			if r.Engine != tt.engine {
				t.Errorf("engine = %s, want %s", r.Engine, tt.engine)
			}
			if r.Prerelease() != tt.prerelease {
				t.Errorf("Prerelease() = %v, want %v", r.Prerelease(), tt.prerelease)
			}
			if r.WAL != tt.wal {
				t.Errorf("WAL = %v, want %v", r.WAL, tt.wal)
			}
			if r.CacheDirFlag != tt.cacheDir {
				t.Errorf("CacheDirFlag = %v, want %v", r.CacheDirFlag, tt.cacheDir)
			}
			if r.MigrationFailureExitsNonZero != tt.exitNonZero {
				t.Errorf("MigrationFailureExitsNonZero = %v, want %v", r.MigrationFailureExitsNonZero, tt.exitNonZero)
			}
		})
	}
}

func TestUnknownAndDroppedTags(t *testing.T) {
	c := Default()
	for _, tag := range []string{"0.1.0rc1", "v0.3.2", "0.4.0", "v2.3.0", "latest", ""} {
		if _, ok := c.Release(tag); ok {
			t.Errorf("Release(%q) found, want not found", tag)
		}
	}
}

func TestVariantsPerEra(t *testing.T) {
	tests := []struct {
		tag     string
		has     []string
		hasNot  []string
		count   int
		imgTag  string // ImageTag of the last entry of has
		comment string
	}{
		{"0.1.0", nil, []string{""}, 0, "", "no image was published"},
		{"0.3.2", []string{""}, []string{"cpu"}, 1, "0.3.2", "one CUDA image"},
		{"v0.4.0", []string{"", "musa", "npu", "cpu"}, []string{"rocm", "dcu"}, 4, "v0.4.0-cpu", ""},
		{"v0.5.0", []string{"", "rocm"}, []string{"dcu"}, 5, "v0.5.0-rocm", ""},
		{"v0.5.1", []string{"", "rocm", "dcu"}, []string{"corex"}, 6, "v0.5.1-dcu", "adds dcu"},
		{"v0.6.0", []string{"", "cuda12.8", "cuda11.8", "npu-310p"}, []string{"corex"}, 9, "v0.6.0-npu-310p", ""},
		{"v0.6.1", []string{"cuda11.8"}, []string{"corex"}, 9, "v0.6.1-cuda11.8", ""},
		{"v0.6.2", []string{"", "cuda12.8", "corex"}, []string{"cuda11.8"}, 9, "v0.6.2-corex", "cuda11.8 dropped"},
		{"v0.7.1rc1", []string{"", "cpu", "corex"}, []string{"cuda11.8"}, 9, "v0.7.1rc1-corex", "rc carries its era"},
		{"v2.0.0", []string{""}, []string{"cpu", "cuda12.8", "npu"}, 1, "v2.0.0", "unified image"},
		{"v2.2.3", []string{""}, []string{"cpu"}, 1, "v2.2.3", ""},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			r, ok := c.Release(tt.tag)
			if !ok {
				t.Fatalf("release %s not found", tt.tag)
			}
			for _, v := range tt.has {
				if !r.HasVariant(v) {
					t.Errorf("HasVariant(%q) = false, want true", v)
				}
			}
			for _, v := range tt.hasNot {
				if r.HasVariant(v) {
					t.Errorf("HasVariant(%q) = true, want false", v)
				}
			}
			if len(r.Variants) != tt.count {
				t.Errorf("variants = %q, want %d of them", r.Variants, tt.count)
			}
			if len(tt.has) > 0 {
				if got := r.ImageTag(tt.has[len(tt.has)-1]); got != tt.imgTag {
					t.Errorf("ImageTag = %s, want %s", got, tt.imgTag)
				}
			}
		})
	}
}

// Every variant in the catalog must be one ClassifyTag can split off, or
// the planner could never match an observed image tag to it.
func TestCatalogVariantsAreKnownToClassifyTag(t *testing.T) {
	for _, r := range Default().Releases() {
		for _, v := range r.Variants {
			if v == "" {
				continue
			}
			tag := ClassifyTag(r.ImageTag(v))
			if tag.Base != r.Tag || tag.Variant != v {
				t.Errorf("ClassifyTag(%s) = base %q variant %q", r.ImageTag(v), tag.Base, tag.Variant)
			}
		}
	}
}

func TestEngineSwitchesAtV2(t *testing.T) {
	for _, r := range Default().Releases() {
		want := EngineSQLite
		if r.Version().Segments()[0] >= 2 {
			want = EngineEmbeddedPostgres
		}
		if r.Engine != want {
			t.Errorf("%s: engine %s, want %s", r.Tag, r.Engine, want)
		}
		if r.WAL && r.Engine != EngineSQLite {
			t.Errorf("%s: WAL set on a non-SQLite release", r.Tag)
		}
	}
}

func TestChainIsLinkedAndIndexed(t *testing.T) {
	c := Default()
	all, err := c.Crossed("", c.Head().ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range all {
		if r.Index() != i {
			t.Errorf("%s: Index() = %d, want %d", r.ID, r.Index(), i)
		}
		want := ""
		if i > 0 {
			want = all[i-1].ID
		}
		if r.Down != want {
			t.Errorf("%s: down %q, want %q", r.ID, r.Down, want)
		}
		if r.Message == "" {
			t.Errorf("%s: empty message", r.ID)
		}
	}
}

// first_tag must be the earliest tag whose head includes the revision, and
// every tag named in edited_in_place must be a known release.
func TestFirstTagAndEditedInPlaceNameReleases(t *testing.T) {
	c := Default()
	rs := c.Releases()
	all, _ := c.Crossed("", c.Head().ID)
	for _, rev := range all {
		first := ""
		for _, r := range rs {
			if h, _ := c.Revision(r.Head); h.Index() >= rev.Index() {
				first = r.Tag
				break
			}
		}
		if rev.FirstTag != first {
			t.Errorf("%s: first_tag %q, want %q", rev.ID, rev.FirstTag, first)
		}
		for _, tag := range rev.EditedInPlace {
			if _, ok := c.Release(tag); !ok {
				t.Errorf("%s: edited_in_place names unknown tag %s", rev.ID, tag)
			}
		}
	}
	unreleased, _ := c.Revision("367a3982fcde")
	if unreleased.FirstTag != "" || !strings.Contains(unreleased.Message, "unreleased") {
		t.Errorf("367a3982fcde: first_tag %q, message %q; want no tag and marked unreleased", unreleased.FirstTag, unreleased.Message)
	}
}

func TestHazards(t *testing.T) {
	tests := []struct {
		id           string
		deletesRows  string // substring, "" for none
		touchesCache string // substring, "" for none
		edited       []string
	}{
		{"1dd9fa5b38ff", "", "", []string{"v0.4.0rc1", "v0.6.1rc1", "v2.0.1rc1", "v2.2.0rc1"}},
		{"6dcb3a50da19", "model_instances", "", []string{"0.3.2rc1", "v0.4.0rc1", "v0.6.1rc1"}},
		{"004c73a5c09e", "", "", nil},
		{"c45e397531d1", "api_keys", "*.lock", []string{"v0.6.0rc2", "v0.6.0", "v0.6.1rc1", "v2.0.0rc1"}},
		{"cbbc03c88985", "", "", []string{"v0.7.1rc1"}},
		{"2aed534bd7b2", "OLLAMA_LIBRARY", "", []string{"v2.0.2rc2"}},
		{"8bf38a6bb3b5", "", "", []string{"v2.2.0rc4"}},
		{"7c5e3f9a2d18", "", "", []string{"v2.2.0rc2", "v2.2.1rc1"}},
		{"c4d7e8f9a0b1", "", "", nil},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			r, ok := c.Revision(tt.id)
			if !ok {
				t.Fatalf("revision %s not found", tt.id)
			}
			checkContains(t, "DeletesRows", r.DeletesRows, tt.deletesRows)
			checkContains(t, "TouchesCache", r.TouchesCache, tt.touchesCache)
			if !reflect.DeepEqual(r.EditedInPlace, tt.edited) {
				t.Errorf("EditedInPlace = %q, want %q", r.EditedInPlace, tt.edited)
			}
		})
	}
}

func checkContains(t *testing.T, field, got, want string) {
	t.Helper()
	if want == "" && got != "" {
		t.Errorf("%s = %q, want empty", field, got)
	}
	if want != "" && !strings.Contains(got, want) {
		t.Errorf("%s = %q, want it to mention %q", field, got, want)
	}
}

func TestCrossed(t *testing.T) {
	tests := []struct {
		name    string
		from    string
		to      string
		want    []string // ids, or nil to check only the count
		count   int
		wantErr string
	}{
		{name: "v0.5.1 to v0.6.0", from: "e6bf9e067296", to: "c45e397531d1", want: []string{"c45e397531d1"}, count: 1},
		{name: "fresh database to head", from: "", to: "367a3982fcde", count: 33},
		{name: "fresh database to v0.1.0", from: "", to: "1dd9fa5b38ff", want: []string{"1dd9fa5b38ff"}, count: 1},
		{name: "same revision", from: "c45e397531d1", to: "c45e397531d1", want: []string{}, count: 0},
		{name: "v0.7.1 to v2.2.3", from: "d19176de3b74", to: "c4d7e8f9a0b1", count: 22},
		{name: "v0.1.2 to v0.3.0", from: "8277680cfcb7", to: "f29521415cbd", want: []string{"6dcb3a50da19", "f29521415cbd"}, count: 2},
		{name: "backwards", from: "c45e397531d1", to: "e6bf9e067296", wantErr: "comes before"},
		{name: "unknown from", from: "a7c1b20f9d3e", to: "2aed534bd7b2", wantErr: `"a7c1b20f9d3e" is not on the release chain`},
		{name: "unknown to", from: "e6bf9e067296", to: "deadbeef0000", wantErr: `"deadbeef0000" is not on the release chain`},
		{name: "empty to", from: "", to: "", wantErr: "not on the release chain"},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Crossed(tt.from, tt.to)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.count {
				t.Fatalf("crossed %d revisions, want %d", len(got), tt.count)
			}
			if tt.want != nil && !reflect.DeepEqual(revisionIDs(got), tt.want) {
				t.Errorf("crossed %q, want %q", revisionIDs(got), tt.want)
			}
			if len(got) > 0 && got[len(got)-1].ID != tt.to {
				t.Errorf("last crossed = %s, want %s", got[len(got)-1].ID, tt.to)
			}
		})
	}
}

func TestCrossedCarriesHazards(t *testing.T) {
	c := Default()
	got, err := c.Crossed("e6bf9e067296", "c45e397531d1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].TouchesCache == "" {
		t.Fatalf("Crossed(e6bf9e067296, c45e397531d1) = %+v, want one revision with a cache hazard", revisionIDs(got))
	}
	// v0.7.1 → v2 crosses the OLLAMA_LIBRARY deletion.
	got, _ = c.Crossed("d19176de3b74", "c4d7e8f9a0b1")
	var deleting []string
	for _, r := range got {
		if r.DeletesRows != "" {
			deleting = append(deleting, r.ID)
		}
	}
	if !reflect.DeepEqual(deleting, []string{"2aed534bd7b2"}) {
		t.Errorf("revisions that delete rows = %q, want [2aed534bd7b2]", deleting)
	}
}

// Crossed must hand out copies: a caller appending to or editing the result
// must not change the catalog.
func TestCrossedReturnsACopy(t *testing.T) {
	c := Default()
	got, _ := c.Crossed("", "8277680cfcb7")
	got[0].Message = "changed"
	if r, _ := c.Revision("1dd9fa5b38ff"); r.Message == "changed" {
		t.Fatal("Crossed result aliases the catalog")
	}
}

func revisionIDs(rs []Revision) []string {
	ids := []string{}
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestReleasesWithHead(t *testing.T) {
	tests := []struct {
		rev  string
		want []string
	}{
		{"1dd9fa5b38ff", []string{"0.1.0"}},
		{"8277680cfcb7", []string{"0.1.1", "0.1.2"}},
		{"c45e397531d1", []string{"v0.6.0", "v0.6.1", "v0.6.2"}},
		{"e30134bd18dc", []string{"v2.0.0", "v2.0.1"}},
		{"b2c3d4e5f6a7", []string{"v2.2.0", "v2.2.1"}},
		{"61929acb0676", nil}, // only v2.2.0rc1
		{"7c5e3f9a2d18", nil}, // never a head
		{"367a3982fcde", nil}, // unreleased
		{"nosuchrev", nil},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.rev, func(t *testing.T) {
			var got []string
			for _, r := range c.ReleasesWithHead(tt.rev) {
				got = append(got, r.Tag)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReleasesWithHead(%s) = %q, want %q", tt.rev, got, tt.want)
			}
		})
	}
}

func TestFirstReleaseWith(t *testing.T) {
	tests := []struct {
		rev    string
		want   string
		wantOK bool
	}{
		{"1dd9fa5b38ff", "0.1.0", true},
		{"c45e397531d1", "v0.6.0", true},
		{"d19176de3b74", "v0.7.1", true},
		{"924c9a0b4c13", "v2.0.0", true},
		{"8bf38a6bb3b5", "v2.2.0", true}, // first tag v2.2.0rc1, first final v2.2.0
		{"61929acb0676", "v2.2.0", true},
		{"367a3982fcde", "", false},
		{"a7c1b20f9d3e", "", false},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.rev, func(t *testing.T) {
			got, ok := c.FirstReleaseWith(tt.rev)
			if ok != tt.wantOK || got.Tag != tt.want {
				t.Errorf("FirstReleaseWith(%s) = %q, %v; want %q, %v", tt.rev, got.Tag, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestDevRevision(t *testing.T) {
	tests := []struct {
		id     string
		wantOK bool
		note   string
	}{
		{"a7c1b20f9d3e", true, "#3812"},
		{"a16a55af6f75", true, "0.1.0rc1"},
		{"4f4ec0a5fcb3", true, "0.1.0rc1"},
		{"e07da3eaf094", true, "before 0.1.0"},
		{"277d9f8742f6", true, "61929acb0676"},
		{"c45e397531d1", false, ""}, // on the chain, not dev
		{"367a3982fcde", false, ""}, // on the chain although unreleased
		{"ffffffffffff", false, ""},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			d, ok := c.DevRevision(tt.id)
			if ok != tt.wantOK {
				t.Fatalf("DevRevision(%s) found = %v, want %v", tt.id, ok, tt.wantOK)
			}
			if ok && !strings.Contains(d.Note, tt.note) {
				t.Errorf("note %q, want it to mention %q", d.Note, tt.note)
			}
		})
	}
}

func TestLatestFinal(t *testing.T) {
	if got := Default().LatestFinal().Tag; got != "v2.2.3" {
		t.Errorf("LatestFinal() = %s, want v2.2.3", got)
	}
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWithFile(t *testing.T) {
	const v230 = `{"releases": [{"tag": "v2.3.0", "head": "367a3982fcde", "engine": "embedded-postgresql", "variants": [""],
		"migration_failure_exits_non_zero": true, "cache_dir_flag": true}]}`
	tests := []struct {
		name    string
		body    string
		wantErr string
		check   func(t *testing.T, c *Catalog)
	}{
		{
			name: "new release on the unreleased head",
			body: v230,
			check: func(t *testing.T, c *Catalog) {
				r, ok := c.Release("v2.3.0")
				if !ok || r.Head != "367a3982fcde" || r.Prerelease() {
					t.Fatalf("Release(v2.3.0) = %+v, %v", r, ok)
				}
				if got := c.LatestFinal().Tag; got != "v2.3.0" {
					t.Errorf("LatestFinal() = %s, want v2.3.0", got)
				}
				if got, ok := c.FirstReleaseWith("367a3982fcde"); !ok || got.Tag != "v2.3.0" {
					t.Errorf("FirstReleaseWith(367a3982fcde) = %s, %v", got.Tag, ok)
				}
				if got := len(c.Releases()); got != 64 {
					t.Errorf("releases = %d, want 64", got)
				}
				if _, ok := c.DevRevision("a7c1b20f9d3e"); !ok {
					t.Error("dev revisions lost in the merge")
				}
			},
		},
		{
			name: "new revision continuing the chain",
			body: `{"revisions": [{"id": "f1a2b3c4d5e6", "down": "367a3982fcde", "message": "next", "first_tag": "v2.3.1",
				"adds": {"model_usage_details": ["ttft"]}}],
				"releases": [{"tag": "v2.3.1", "head": "f1a2b3c4d5e6", "engine": "embedded-postgresql", "variants": [""]}],
				"dev_revisions": [{"id": "0cb897241d53", "note": "seen on a PR image"}]}`,
			check: func(t *testing.T, c *Catalog) {
				if c.Head().ID != "f1a2b3c4d5e6" || c.Head().Index() != 33 {
					t.Fatalf("Head() = %s at %d", c.Head().ID, c.Head().Index())
				}
				p := c.Head().Probe()
				if !p.Has("model_usage_details", "ttft") || !p.Has("model_usage_details", "completed") {
					t.Errorf("probe did not carry the chain forward: %v", p.Tables["model_usage_details"])
				}
				if _, ok := c.DevRevision("0cb897241d53"); !ok {
					t.Error("dev revision from the file missing")
				}
			},
		},
		{
			name: "released revision that was known from dev images",
			body: `{"revisions": [{"id": "d5e8f1a2b3c4", "down": "367a3982fcde", "message": "released at last", "first_tag": "v2.3.0"}],
				"releases": [{"tag": "v2.3.0", "head": "d5e8f1a2b3c4", "engine": "embedded-postgresql", "variants": [""]}]}`,
			check: func(t *testing.T, c *Catalog) {
				if _, ok := c.DevRevision("d5e8f1a2b3c4"); ok {
					t.Error("d5e8f1a2b3c4 is still listed as dev-only")
				}
				if r, ok := c.Revision("d5e8f1a2b3c4"); !ok || r.Index() != 33 {
					t.Errorf("Revision(d5e8f1a2b3c4) = %d, %v", r.Index(), ok)
				}
				if _, ok := c.DevRevision("a7c1b20f9d3e"); !ok {
					t.Error("other dev revisions lost")
				}
			},
		},
		{name: "duplicate tag", body: `{"releases": [{"tag": "v2.2.3", "head": "c4d7e8f9a0b1", "engine": "embedded-postgresql"}]}`, wantErr: "release v2.2.3 listed twice"},
		{name: "broken chain", body: `{"revisions": [{"id": "f1a2b3c4d5e6", "down": "c4d7e8f9a0b1", "message": "fork"}]}`, wantErr: `down revision "c4d7e8f9a0b1", want "367a3982fcde"`},
		{name: "revision already known", body: `{"revisions": [{"id": "c45e397531d1", "down": "367a3982fcde"}]}`, wantErr: "listed twice"},
		{name: "head not on chain", body: `{"releases": [{"tag": "v2.3.0", "head": "f1a2b3c4d5e6", "engine": "embedded-postgresql"}]}`, wantErr: "not on the revision chain"},
		{name: "unknown engine", body: `{"releases": [{"tag": "v2.3.0", "head": "367a3982fcde", "engine": "mysql"}]}`, wantErr: `unknown engine "mysql"`},
		{name: "dev revision on the chain", body: `{"dev_revisions": [{"id": "c45e397531d1", "note": "x"}]}`, wantErr: "also on the release chain"},
		{name: "not JSON", body: `releases: []`, wantErr: "decode catalog file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "extra.json", tt.body)
			got, err := Default().WithFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("err %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
	// The default catalog is left alone.
	if _, ok := Default().Release("v2.3.0"); ok {
		t.Error("WithFile modified the default catalog")
	}
	if Default().Head().ID != "367a3982fcde" {
		t.Error("WithFile moved the default catalog's head")
	}
}

func TestWithFileMissing(t *testing.T) {
	_, err := Default().WithFile(filepath.Join(t.TempDir(), "absent.json"))
	if err == nil || !strings.Contains(err.Error(), "open catalog file") {
		t.Fatalf("err = %v, want an open error", err)
	}
}

func TestParseRejects(t *testing.T) {
	const root = `{"id": "r1", "message": "root"}`
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{"not JSON", `{`, "decode catalog"},
		{"no revisions", `{"releases": []}`, "no revisions"},
		{"revision without id", `{"revisions": [{"message": "x"}]}`, "revision 0 has no id"},
		{"root with a down", `{"revisions": [{"id": "r1", "down": "r0"}]}`, `down revision "r0", want ""`},
		{"out of order", `{"revisions": [` + root + `, {"id": "r3", "down": "r2"}, {"id": "r2", "down": "r1"}]}`, `revision r3: down revision "r2", want "r1"`},
		{"bad tag", `{"revisions": [` + root + `], "releases": [{"tag": "not-a-version", "head": "r1", "engine": "sqlite"}]}`, `release "not-a-version"`},
		{"missing engine", `{"revisions": [` + root + `], "releases": [{"tag": "1.0.0", "head": "r1"}]}`, `unknown engine ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestCompletedColumnProbe: v2.2.0rc1–rc3 created model_usage_details
// without completed and v2.2.0rc4 added it in place (#5774), so every
// revision from 8bf38a6bb3b5 on must require the column, or a database
// that lacks it would pass the probe and fail at run time.
func TestCompletedColumnProbe(t *testing.T) {
	for _, id := range []string{"8bf38a6bb3b5", "61929acb0676", "b2c3d4e5f6a7", "c4d7e8f9a0b1"} {
		r, ok := Default().Revision(id)
		if !ok {
			t.Fatalf("revision %s missing", id)
		}
		for _, table := range []string{"model_usage_details", "model_usage_details_archive"} {
			if !r.Probe().Has(table, "completed") {
				t.Errorf("the probe of %s lacks %s.completed", id, table)
			}
		}
	}
}

// TestJumpRevision: the data migration's meeting point is v0.7.1's head,
// the last SQLite release, and every table it copies exists there.
func TestJumpRevision(t *testing.T) {
	rel, ok := Default().Release("v0.7.1")
	if !ok || rel.Head != JumpRevision || rel.Engine != EngineSQLite {
		t.Fatalf("v0.7.1 = %+v, want head %s on SQLite", rel, JumpRevision)
	}
	r, _ := Default().Revision(JumpRevision)
	for _, table := range MigratedTables() {
		if !r.Probe().Has(table, "") {
			t.Errorf("table %s is not in the probe of %s", table, JumpRevision)
		}
	}
	tables := MigratedTables()
	tables[0] = "changed"
	if MigratedTables()[0] != "system_loads" {
		t.Error("MigratedTables must return a copy")
	}
}
