package doctor

import (
	"fmt"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// freshOption is the last resort: an empty data volume, the model cache
// kept, the old data copied aside first.
func (d *diagnosis) freshOption() *Option {
	rel, variant := d.freshTarget()
	o := &Option{Kind: KindFresh,
		Title: "Start over with an empty data volume, keeping the model cache",
		Why:   fmt.Sprintf("When no backup fits: %s starts on an empty database. ", rel.ImageTag(variant)),
		Risk: "All GPUStack state except the model cache is lost: users, API keys, model definitions and usage history; " +
			"workers must register again with the new token. gpustack-deploy never removes a data volume by itself: that step is yours.",
	}
	switch {
	case d.in.DataBind:
		o.Why += "The data directory is moved aside, not deleted."
	case d.verifiedBackupPossible():
		o.Why += "Keep a verified backup of the current database first."
	case d.in.ConfigFile != "":
		o.Why += "`gpustack-deploy backup` keeps only verified copies and refuses this database, so keep a raw copy of the data directory first."
	default:
		o.Why += "Keep a raw copy of the data directory first."
	}
	if d.in.Cache != "" {
		o.Risk += fmt.Sprintf(" The model cache lives in its own volume %s, which stays: do not remove it.", d.in.Cache)
	} else {
		o.Risk += " The model cache lives inside the data volume: removing the volume deletes the downloaded models, which would be " +
			"downloaded again; declare a separate cache volume and copy cache/ into it first to keep them."
	}
	o.Commands = d.freshCommands(rel, variant)
	return o
}

// freshTarget is the release a fresh start runs: the file's, else the
// image's, else the one the backups or the database name, else the newest.
func (d *diagnosis) freshTarget() (catalog.Release, string) {
	var tags []string
	if d.in.ConfigFile != "" {
		tags = append(tags, d.in.ConfigVersion)
	}
	if d.primary != nil && d.primary.release != nil {
		tags = append(tags, d.primary.release.Tag)
	}
	for _, m := range d.in.Backups {
		tags = append(tags, catalog.ClassifyTag(m.Version).Base)
	}
	if d.stamp != nil {
		tags = append(tags, d.releaseFor(*d.stamp))
	}
	for _, t := range tags {
		if rel, ok := d.cat.Release(t); ok && !rel.Prerelease() {
			return rel, d.variantFor(rel)
		}
	}
	rel := d.cat.LatestFinal()
	if d.primary != nil && d.primary.tag.Variant != "" {
		for _, r := range d.cat.Releases() {
			if !r.Prerelease() && r.HasVariant(d.primary.tag.Variant) {
				rel = r
			}
		}
	}
	return rel, d.variantFor(rel)
}

func (d *diagnosis) freshCommands(rel catalog.Release, variant string) []string {
	var out []string
	holder := d.primary
	if holder == nil && len(d.others) > 0 {
		holder = d.others[0]
	}
	name := firstNonEmpty(d.in.Deployment, d.in.Data)
	if holder != nil {
		name = firstNonEmpty(d.in.Deployment, holder.name())
	}
	switch {
	case d.in.DataBind:
		// Moving the directory aside is the copy.
	case d.verifiedBackupPossible():
		out = append(out, d.deploy("backup")+" --deployment "+d.in.Deployment)
	case holder != nil:
		out = append(out, fmt.Sprintf("docker cp %s:%s ./%s-data-before-redeploy", holder.name(), dataDir, name))
	case d.in.Data != "":
		out = append(out, fmt.Sprintf(`docker run --rm -v %s:/data:ro -v "$PWD":/out busybox tar -czf /out/%s-data-before-redeploy.tar.gz -C /data .`, d.in.Data, name))
	}
	if d.primary != nil {
		out = append(out, "docker rm -f "+d.primary.name())
	}
	for _, s := range d.others {
		out = append(out, "docker rm -f "+s.name())
	}
	switch {
	case d.in.DataBind:
		out = append(out, fmt.Sprintf("sudo mv %s %s.before-redeploy", d.in.Data, d.in.Data))
	case d.in.Data != "":
		out = append(out, "docker volume rm "+d.in.Data)
	}
	if d.in.ConfigFile != "" {
		if d.configTag() != rel.ImageTag(variant) {
			out = append(out, d.setVersion(rel.Tag, variant))
		}
		return append(out, d.deploy("apply"))
	}
	if holder != nil {
		out = append(out, dockerRun(holder.ct, holder.image.Env, d.repo()+":"+rel.ImageTag(variant)))
	}
	return out
}

// verifiedBackupPossible reports whether `gpustack-deploy backup` accepts
// the database: it must be stamped on the chain and pass that probe.
func (d *diagnosis) verifiedBackupPossible() bool {
	return d.in.ConfigFile != "" && d.stamp != nil && !d.has(CodeProbeMismatch)
}
