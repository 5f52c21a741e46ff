package catalog

import "testing"

func TestClassifyTag(t *testing.T) {
	tests := []struct {
		raw     string
		class   TagClass
		base    string
		variant string
	}{
		{"v0.5.1", TagRelease, "v0.5.1", ""},
		{"0.3.2", TagRelease, "0.3.2", ""},
		{"v0.5.1-cpu", TagRelease, "v0.5.1", "cpu"},
		{"v0.6.0-npu-310p", TagRelease, "v0.6.0", "npu-310p"},
		{"v0.6.0-cuda11.8", TagRelease, "v0.6.0", "cuda11.8"},
		{"v0.7.1rc1", TagPrerelease, "v0.7.1rc1", ""},
		{"v0.7.1rc1-rocm", TagPrerelease, "v0.7.1rc1", "rocm"},
		{"0.3.2rc1", TagPrerelease, "0.3.2rc1", ""},
		{"v2.2.3rc1", TagPrerelease, "v2.2.3rc1", ""},
		{"main", TagDev, "main", ""},
		{"main-cpu", TagDev, "main", "cpu"},
		{"main-cu11.8", TagDev, "main", "cu11.8"},
		{"dev", TagDev, "dev", ""},
		{"dev-1a2b3c4", TagDev, "dev-1a2b3c4", ""},
		{"v2.0-dev", TagDev, "v2.0-dev", ""},
		{"v2.0-dev-1a2b3c4", TagDev, "v2.0-dev-1a2b3c4", ""},
		{"v0.7-dev-cpu", TagDev, "v0.7-dev", "cpu"},
		{"latest", TagFloating, "latest", ""},
		{"latest-cpu", TagFloating, "latest", "cpu"},
		{"v0.7", TagFloating, "v0.7", ""},
		{"v0.7-npu", TagFloating, "v0.7", "npu"},
		{"garbage", TagUnknown, "garbage", ""},
		{"", TagUnknown, "", ""},
		{"v0.5.1-nosuchvariant", TagUnknown, "v0.5.1-nosuchvariant", ""},
		{"dev-xyz", TagUnknown, "dev-xyz", ""},       // not a commit
		{"dev-1a2b3c", TagUnknown, "dev-1a2b3c", ""}, // six hex digits is too short
		{"feature-1a2b3c4", TagUnknown, "feature-1a2b3c4", ""},
		{"cpu", TagUnknown, "cpu", ""},
		{"0.7", TagUnknown, "0.7", ""}, // minor tags carry a "v"
	}
	for _, tt := range tests {
		name := tt.raw
		if name == "" {
			name = "empty"
		}
		t.Run(name, func(t *testing.T) {
			got := ClassifyTag(tt.raw)
			want := Tag{Raw: tt.raw, Class: tt.class, Base: tt.base, Variant: tt.variant}
			if got != want {
				t.Errorf("ClassifyTag(%q) = %+v, want %+v", tt.raw, got, want)
			}
		})
	}
}

// TagClass values are persisted in saved plans: renumbering one breaks them.
func TestTagClassValuesAreStable(t *testing.T) {
	tests := []struct {
		class TagClass
		value int
		name  string
	}{
		{TagUnknown, 0, "unknown"},
		{TagRelease, 1, "release"},
		{TagPrerelease, 2, "release candidate"},
		{TagDev, 3, "development"},
		{TagFloating, 4, "floating"},
		{TagClass(99), 99, "unknown"},
	}
	for _, tt := range tests {
		if int(tt.class) != tt.value || tt.class.String() != tt.name {
			t.Errorf("TagClass %d = %d %q, want %d %q", tt.class, int(tt.class), tt.class.String(), tt.value, tt.name)
		}
	}
}

// A classified release tag with a variant maps back onto the catalog.
func TestClassifiedTagResolvesInCatalog(t *testing.T) {
	tests := []struct {
		raw     string
		found   bool
		variant bool // the catalog lists the variant for the release
	}{
		{"v0.5.1-dcu", true, true},
		{"v0.5.0-dcu", true, false},
		{"v0.6.2-cuda11.8", true, false},
		{"0.1.0", true, false}, // no image at all
		{"v2.2.3", true, true},
		{"v2.2.3-cpu", true, false},
		{"v9.9.9", false, false},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			tag := ClassifyTag(tt.raw)
			r, ok := c.Release(tag.Base)
			if ok != tt.found {
				t.Fatalf("Release(%s) found = %v, want %v", tag.Base, ok, tt.found)
			}
			if ok && r.HasVariant(tag.Variant) != tt.variant {
				t.Errorf("HasVariant(%q) = %v, want %v", tag.Variant, !tt.variant, tt.variant)
			}
		})
	}
}
