package catalog

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-version"
)

// FuzzClassifyTag feeds arbitrary strings to ClassifyTag. It must never
// panic, and what it returns must hold together: the parts rebuild the
// input, classification is a function of the string alone, the base alone
// classifies the same way, a tag the catalog knows is a release or a
// release candidate (as the catalog says), and the class survives its
// JSON name.
//
// A tag classified as a release need not be in the catalog (v9.9.9 is a
// release this binary has not heard of; config refuses it as "Unknown
// release"), so the catalog property runs the other way.
//
// The checked-in corpus is testdata/fuzz/FuzzClassifyTag; every tag and
// variant of the embedded catalog is added as a seed too.
func FuzzClassifyTag(f *testing.F) {
	for _, r := range Default().Releases() {
		f.Add(r.Tag)
		for _, v := range r.Variants {
			f.Add(r.ImageTag(v))
		}
	}
	cat := Default()
	f.Fuzz(func(t *testing.T, s string) {
		tag := ClassifyTag(s)
		if again := ClassifyTag(s); again != tag {
			t.Fatalf("ClassifyTag(%q) is not stable: %+v then %+v", s, tag, again)
		}
		if tag.Raw != s {
			t.Fatalf("ClassifyTag(%q).Raw = %q", s, tag.Raw)
		}
		switch tag.Class {
		case TagUnknown, TagRelease, TagPrerelease, TagDev, TagFloating:
		default:
			t.Fatalf("ClassifyTag(%q) has class %d, which has no name", s, int(tag.Class))
		}
		name, err := tag.Class.MarshalText()
		if err != nil {
			t.Fatalf("class %v of %q does not marshal: %v", tag.Class, s, err)
		}
		var back TagClass
		if err := back.UnmarshalText(name); err != nil || back != tag.Class {
			t.Fatalf("class %v of %q -> %q -> %v, %v", tag.Class, s, name, back, err)
		}

		// The parts rebuild the input, and a variant is one GPUStack built.
		if tag.Variant == "" {
			if tag.Base != s {
				t.Fatalf("ClassifyTag(%q): no variant, but base %q", s, tag.Base)
			}
		} else {
			if tag.Class == TagUnknown {
				t.Fatalf("ClassifyTag(%q): unknown tag with variant %q", s, tag.Variant)
			}
			if !slices.Contains(KnownVariants, tag.Variant) {
				t.Fatalf("ClassifyTag(%q): variant %q is not a known one", s, tag.Variant)
			}
			if tag.Base+"-"+tag.Variant != s {
				t.Fatalf("ClassifyTag(%q): base %q and variant %q do not rebuild it", s, tag.Base, tag.Variant)
			}
		}

		// The base alone is the same kind of tag, without a variant: the
		// planner and config classify d.Version and d.ImageTag() and
		// expect the same answer.
		if tag.Class != TagUnknown {
			base := ClassifyTag(tag.Base)
			if base.Class != tag.Class || base.Base != tag.Base || base.Variant != "" {
				t.Fatalf("ClassifyTag(%q) = %+v, but its base alone gives %+v", s, tag, base)
			}
		}

		// Release and release candidate tags are versions; the catalog and
		// config compare them with go-version. Numbers past int64 do not
		// parse, and the callers treat that as an unknown release.
		if tag.Class == TagRelease || tag.Class == TagPrerelease {
			if v, err := version.NewVersion(tag.Base); err == nil {
				if (v.Prerelease() != "") != (tag.Class == TagPrerelease) {
					t.Fatalf("ClassifyTag(%q) = %v, but go-version reads prerelease %q", s, tag.Class, v.Prerelease())
				}
				if len(v.Segments()) < 3 {
					t.Fatalf("%q parses to %d segments", tag.Base, len(v.Segments()))
				}
			} else if !strings.Contains(err.Error(), "out of range") && !strings.Contains(err.Error(), "error parsing version") {
				t.Fatalf("ClassifyTag(%q) = %v, but go-version refuses %q: %v", s, tag.Class, tag.Base, err)
			}
		}

		// A tag the catalog knows is a release or a release candidate, as
		// the catalog says, and its image tag is the input.
		if r, ok := cat.Release(tag.Base); ok {
			want := TagRelease
			if r.Prerelease() {
				want = TagPrerelease
			}
			if tag.Class != want {
				t.Fatalf("catalog release %s (prerelease %v) classified %v", r.Tag, r.Prerelease(), tag.Class)
			}
			if r.ImageTag(tag.Variant) != s {
				t.Fatalf("catalog release %s with variant %q gives image tag %q, not %q", r.Tag, tag.Variant, r.ImageTag(tag.Variant), s)
			}
		}
	})
}

// FuzzCatalogFile feeds arbitrary bytes to WithFile, as a `catalog { file
// = … }` block does. It must never panic; a catalog it accepts must answer
// every lookup the planner and config make without panicking, keep its
// releases in version order with heads on the chain, and every release it
// lists must be a tag ClassifyTag calls a release or release candidate,
// as the catalog does: otherwise `version = "<tag>"` names a release
// config refuses as an unknown version. The checked-in corpus is
// testdata/fuzz/FuzzCatalogFile.
func FuzzCatalogFile(f *testing.F) {
	f.Add([]byte(`{"releases": [{"tag": "v2.3.0", "head": "367a3982fcde", "engine": "embedded-postgresql", "variants": [""]}]}`))
	f.Add([]byte(`{"revisions": [{"id": "f1a2b3c4d5e6", "down": "367a3982fcde", "message": "next", "first_tag": "v2.3.1",
		"adds": {"model_usage_details": ["ttft"]}, "drops": {"users": ["x"]}, "renames": [{"table": "a", "to": "b"}]}],
		"releases": [{"tag": "v2.3.1rc1", "head": "f1a2b3c4d5e6", "engine": "embedded-postgresql", "variants": [""]}],
		"dev_revisions": [{"id": "0cb897241d53", "note": "seen on a PR image"}]}`))
	path := filepath.Join(f.TempDir(), "releases.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Default().WithFile(path)
		if err != nil {
			if c != nil {
				t.Fatalf("an error (%v) with a catalog", err)
			}
			return
		}
		releases := c.Releases()
		if len(releases) < len(Default().Releases()) {
			t.Fatalf("the file took releases away: %d", len(releases))
		}
		for i, r := range releases {
			if i > 0 && r.Version().LessThan(releases[i-1].Version()) {
				t.Fatalf("releases out of order: %s before %s", releases[i-1].Tag, r.Tag)
			}
			if got, ok := c.Release(r.Tag); !ok || got.Tag != r.Tag {
				t.Fatalf("Release(%q) = %v, %v", r.Tag, got.Tag, ok)
			}
			tag := ClassifyTag(r.Tag)
			want := TagRelease
			if r.Prerelease() {
				want = TagPrerelease
			}
			if tag.Class != want || tag.Base != r.Tag {
				t.Fatalf("catalog release %q (prerelease %v) classifies as %v with base %q", r.Tag, r.Prerelease(), tag.Class, tag.Base)
			}
			if _, err := c.Crossed("", r.Head); err != nil {
				t.Fatalf("release %s: %v", r.Tag, err)
			}
			c.ReleasesWithHead(r.Head)
			c.FirstReleaseWith(r.Head)
		}
		c.LatestFinal()
		head := c.Head()
		if _, ok := c.Revision(head.ID); !ok || head.Index() < Default().Head().Index() {
			t.Fatalf("head %s at %d", head.ID, head.Index())
		}
	})
}

// A catalog file may only list tags that read as releases (or release
// candidates) wherever tags are classified; FuzzCatalogFile found "v2".
func TestWithFileRefusesTagsThatAreNotReleases(t *testing.T) {
	for tag, ok := range map[string]bool{
		"v2": false, "v2.3": false, "v2.3.0-beta1": false, "v2.3.0-cpu": false,
		"v2.3.0": true, "2.3.0": true, "v2.3.0rc1": true,
	} {
		t.Run(tag, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "releases.json")
			body := `{"releases": [{"tag": "` + tag + `", "head": "367a3982fcde", "engine": "embedded-postgresql", "variants": [""]}]}`
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Default().WithFile(path)
			if ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if _, found := c.Release(tag); !found {
					t.Fatalf("accepted but not found")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "not a release tag") {
				t.Fatalf("WithFile = %v, want a refusal naming the tag", err)
			}
		})
	}
}
