package catalog

import (
	"fmt"
	"regexp"
	"strings"
)

// TagClass says what kind of image tag a string is. The values are
// persisted in saved plans and JSON output: never renumber them.
type TagClass int

const (
	// TagUnknown is a string that matches none of GPUStack's tag schemes.
	TagUnknown TagClass = 0
	// TagRelease is a final release such as "v0.5.1" or "0.3.2".
	TagRelease TagClass = 1
	// TagPrerelease is a release candidate such as "v0.7.1rc1".
	TagPrerelease TagClass = 2
	// TagDev is a moving development tag: "main", "dev", "dev-<sha>", "vX.Y-dev[-<sha>]".
	TagDev TagClass = 3
	// TagFloating is a moving release tag: "latest", "vX.Y".
	TagFloating TagClass = 4
)

func (c TagClass) String() string {
	switch c {
	case TagRelease:
		return "release"
	case TagPrerelease:
		return "release candidate"
	case TagDev:
		return "development"
	case TagFloating:
		return "floating"
	default:
		return "unknown"
	}
}

// Tag is an image tag split into its parts.
type Tag struct {
	Raw   string   `json:"raw"`
	Class TagClass `json:"class"`
	// Base is the tag without the variant suffix: "v0.5.1", "main", "latest", "v0.7".
	Base string `json:"base"`
	// Variant is the device suffix, e.g. "cpu" in "v0.5.1-cpu"; empty for the default image.
	Variant string `json:"variant,omitempty"`
}

// KnownVariants are the device suffixes GPUStack images have carried
// (facts §1.2), longest first so that "npu-310p" wins over "npu".
var KnownVariants = []string{"cuda12.8", "cuda11.8", "npu-310p", "cu11.8", "musa", "rocm", "corex", "npu", "dcu", "cpu"}

var (
	releaseRe    = regexp.MustCompile(`^v?\d+\.\d+\.\d+$`)
	prereleaseRe = regexp.MustCompile(`^v?\d+\.\d+\.\d+rc\d+$`)
	minorRe      = regexp.MustCompile(`^v\d+\.\d+$`)
	sha7Re       = regexp.MustCompile(`^[0-9a-f]{7,40}$`)
	branchDevRe  = regexp.MustCompile(`^v\d+\.\d+-dev$`)
)

// ClassifyTag splits and classifies an image tag. It never fails: a string
// that matches no scheme is TagUnknown.
func ClassifyTag(s string) Tag {
	t := Tag{Raw: s, Base: s}
	base, variant := splitVariant(s)
	switch {
	case releaseRe.MatchString(base):
		t.Class = TagRelease
	case prereleaseRe.MatchString(base):
		t.Class = TagPrerelease
	case base == "latest" || minorRe.MatchString(base):
		t.Class = TagFloating
	case base == "main" || base == "dev" || branchDevRe.MatchString(base):
		t.Class = TagDev
	default:
		// dev-<sha> and vX.Y-dev-<sha> carry a commit, not a variant.
		if i := strings.LastIndex(s, "-"); i > 0 && sha7Re.MatchString(s[i+1:]) {
			head := s[:i]
			if head == "dev" || branchDevRe.MatchString(head) {
				t.Class = TagDev
				return t
			}
		}
		return t
	}
	t.Base, t.Variant = base, variant
	return t
}

// splitVariant cuts a known device suffix off a tag.
func splitVariant(s string) (base, variant string) {
	for _, v := range KnownVariants {
		if strings.HasSuffix(s, "-"+v) && len(s) > len(v)+1 {
			return s[:len(s)-len(v)-1], v
		}
	}
	return s, ""
}

var tagClassSlugs = map[TagClass]string{
	TagUnknown: "unknown", TagRelease: "release", TagPrerelease: "prerelease", TagDev: "dev", TagFloating: "floating",
}

// MarshalText gives the class's stable JSON name.
func (c TagClass) MarshalText() ([]byte, error) {
	s, ok := tagClassSlugs[c]
	if !ok {
		return nil, fmt.Errorf("no name for tag class %d", int(c))
	}
	return []byte(s), nil
}

// UnmarshalText reads a name written by MarshalText.
func (c *TagClass) UnmarshalText(b []byte) error {
	for k, s := range tagClassSlugs {
		if s == string(b) {
			*c = k
			return nil
		}
	}
	return fmt.Errorf("unknown tag class %q", b)
}
