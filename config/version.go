package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// Era returns the database engine of the image a tag names. A release the
// catalog knows (rel non-nil) answers for itself. Otherwise the tag's form
// decides: a device suffix, main-<x>, latest-<x>, v0.* and 0.* are the
// SQLite era (v0.x); dev, dev-<sha>, plain main, latest, v2.* and any other
// vN.M-dev* are the embedded-PostgreSQL era (v2). Pass the full image tag
// (catalog.ClassifyTag(d.ImageTag())), so that the variant is seen.
func Era(tag catalog.Tag, rel *catalog.Release) catalog.Engine {
	if rel != nil {
		return rel.Engine
	}
	if tag.Variant != "" {
		return catalog.EngineSQLite
	}
	if major, ok := tagMajor(tag.Base); ok && major == 0 {
		return catalog.EngineSQLite
	}
	return catalog.EngineEmbeddedPostgres
}

// tagMajor is the leading major version of a numbered tag ("v0.7-dev" → 0).
func tagMajor(s string) (int, bool) {
	s = strings.TrimPrefix(s, "v")
	end := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if end == 0 || end == -1 || s[end] != '.' {
		return 0, false
	}
	n, err := strconv.Atoi(s[:end])
	return n, err == nil
}

// unifiedOnly reports whether a tag without suffix can only name a v2 image,
// so that no variant can be added to it. main and latest are not: main-cpu
// and latest-cpu are v0.x tags.
func unifiedOnly(base catalog.Tag, rel *catalog.Release) bool {
	if base.Base == "main" || base.Base == "latest" {
		return false
	}
	return Era(base, rel) == catalog.EngineEmbeddedPostgres
}

// checkVersion validates version and variant against the tag schemes and the
// catalog. It returns the release (nil for tags that are not releases or are
// unknown), the era, and whether the era could be told at all.
func (c *checker) checkVersion(ver string, verAttr *hcl.Attribute, variant string, variantAttr *hcl.Attribute) (*catalog.Release, catalog.Engine, bool) {
	tag := catalog.ClassifyTag(ver)
	switch {
	case tag.Class == catalog.TagUnknown:
		c.eval.errorf(verAttr, "Unknown version",
			`%q is not a GPUStack image tag. Write a release such as version = "v2.2.3" or "v0.7.1", a release candidate such as "v2.2.3rc1", a development tag ("dev", "dev-<sha>", "main", "v2.2-dev") or a floating tag ("latest", "v2.2").`, ver)
		return nil, "", false
	case tag.Variant != "":
		c.eval.errorf(verAttr, "Variant in version",
			`version is the tag without its device suffix. Write version = %q and variant = %q.`, tag.Base, tag.Variant)
		return nil, "", false
	}

	var rel *catalog.Release
	if tag.Class == catalog.TagRelease || tag.Class == catalog.TagPrerelease {
		if r, ok := c.cat.Release(ver); ok {
			rel = &r
			if len(r.Variants) == 0 {
				c.eval.errorf(verAttr, "No image for this release",
					"GPUStack %s was published without a Docker image. Use a later release, for example version = %q.", ver, c.cat.LatestFinal().Tag)
			}
		} else if c.catalogReliable {
			c.eval.errorf(verAttr, "Unknown release", "%s", unknownReleaseDetail(c.cat, ver))
		}
	}

	if variant != "" {
		switch {
		case !isKnownVariant(variant):
			c.eval.errorf(variantAttr, "Unknown variant",
				"%q is not a GPUStack image variant. Write one of %s, or remove variant for the default (CUDA) image.", variant, quoteList(catalog.KnownVariants))
		case unifiedOnly(tag, rel) && rel != nil:
			c.eval.errorf(variantAttr, "Variant on a v2 image",
				"GPUStack %s is a v2 release: v2 images are unified, one image for every device with the runtime chosen at run time. Remove variant.", ver)
		case unifiedOnly(tag, rel):
			c.eval.errorf(variantAttr, "Variant on a v2 image",
				"Tag %q names a v2 image: v2 images are unified, one image for every device. Remove variant, or pin a v0.x release such as version = \"v0.7.1\" to use variant = %q.", ver, variant)
		case rel != nil && len(rel.Variants) > 0 && !rel.HasVariant(variant):
			c.eval.errorf(variantAttr, "Variant not built for this release",
				"GPUStack %s was built with %s. Write one of them, or pick a release that was built with %q.", ver, variantList(rel.Variants), variant)
		}
	}
	full := catalog.ClassifyTag(ver)
	if variant != "" && isKnownVariant(variant) {
		full = catalog.ClassifyTag(ver + "-" + variant)
	}
	return rel, Era(full, rel), true
}

func isKnownVariant(v string) bool {
	for _, k := range catalog.KnownVariants {
		if k == v {
			return true
		}
	}
	return false
}

// unknownReleaseDetail names the known releases closest to tag and the way
// to teach the binary newer ones.
func unknownReleaseDetail(cat *catalog.Catalog, tag string) string {
	const extend = ` For a release newer than this binary, add a block catalog { file = "./releases.json" } naming a catalog file that lists it.`
	var alt string
	if strings.HasPrefix(tag, "v") {
		alt = strings.TrimPrefix(tag, "v")
	} else {
		alt = "v" + tag
	}
	if _, ok := cat.Release(alt); ok {
		return fmt.Sprintf(`GPUStack tags before v0.4.0 have no "v" prefix and later ones have it. Write version = %q.`, alt)
	}
	want, err := version.NewVersion(tag)
	if err != nil {
		return fmt.Sprintf("GPUStack %s is not in the release catalog of this binary.%s", tag, extend)
	}
	seg := want.Segments()
	var line []string
	for _, r := range cat.Releases() {
		rs := r.Version().Segments()
		if rs[0] == seg[0] && rs[1] == seg[1] && (!r.Prerelease() || want.Prerelease() != "") {
			line = append(line, r.Tag)
		}
	}
	if len(line) > 8 {
		line = line[len(line)-8:]
	}
	var known string
	if len(line) > 0 {
		known = fmt.Sprintf(" Known %d.%d releases: %s.", seg[0], seg[1], strings.Join(line, ", "))
	} else {
		known = fmt.Sprintf(" The newest known release is %s.", cat.LatestFinal().Tag)
	}
	return fmt.Sprintf("GPUStack %s is not in the release catalog of this binary.%s%s", tag, known, extend)
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

// variantList describes a release's variants, "" being the default image.
func variantList(vs []string) string {
	var named []string
	def := false
	for _, v := range vs {
		if v == "" {
			def = true
			continue
		}
		named = append(named, v)
	}
	switch {
	case len(named) == 0:
		return "the default image only (no variant)"
	case def:
		return "the default image (no variant) and variants " + quoteList(named)
	default:
		return "variants " + quoteList(named)
	}
}
