package config

import (
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

var (
	registryRe  = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]+)?$`)
	pathCompRe  = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
	tagSuffixRe = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
)

// checkImage reports whether s is a repository reference without tag or
// digest, e.g. "gpustack/gpustack" or "quay.io/gpustack/gpustack".
func (c *checker) checkImage(s string, attr *hcl.Attribute) bool {
	if repo, digest, ok := strings.Cut(s, "@"); ok {
		c.eval.errorf(attr, "Digest in image",
			"image is the repository only; gpustack-deploy picks the image by version and variant and does not pin digests. Write image = %q and remove %q.", repo, "@"+digest)
		return false
	}
	parts := strings.Split(s, "/")
	last := parts[len(parts)-1]
	if i := strings.LastIndex(last, ":"); i >= 0 && tagSuffixRe.MatchString(last[i+1:]) {
		repo := strings.TrimSuffix(s, last[i:])
		tag := catalog.ClassifyTag(last[i+1:])
		if tag.Variant != "" {
			c.eval.errorf(attr, "Tag in image",
				"image is the repository only; the tag comes from version and variant. Write image = %q, version = %q and variant = %q.", repo, tag.Base, tag.Variant)
		} else {
			c.eval.errorf(attr, "Tag in image",
				"image is the repository only; the tag comes from version and variant. Write image = %q and version = %q.", repo, tag.Raw)
		}
		return false
	}
	start := 0
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		if !registryRe.MatchString(parts[0]) {
			c.badImage(s, attr)
			return false
		}
		start = 1
	}
	for _, p := range parts[start:] {
		if !pathCompRe.MatchString(p) {
			c.badImage(s, attr)
			return false
		}
	}
	return true
}

func (c *checker) badImage(s string, attr *hcl.Attribute) {
	c.eval.errorf(attr, "Invalid image",
		`%q is not an image repository. Write a lowercase repository such as image = "gpustack/gpustack", or a mirror such as "quay.io/gpustack/gpustack".`, s)
}
