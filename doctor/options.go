package doctor

import (
	"fmt"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

// Option kinds.
const (
	KindRestore = "restore"
	KindPin     = "pin"
	KindStart   = "start"
	KindFresh   = "fresh"
	KindInspect = "inspect"
	KindCleanup = "cleanup"
)

// options ranks the ways back: put the data back where the database is
// damaged, fix the image where the data is intact, start over last.
func (d *diagnosis) options() []Option {
	var out []Option
	add := func(o *Option) {
		if o != nil {
			out = append(out, *o)
		}
	}
	restore := d.restoreOption()
	switch {
	case d.dbGood:
		add(d.pinOption())
		if d.logFailure || d.downgrade() {
			add(restore)
		}
	case d.dbDamaged:
		add(restore)
		add(d.freshOption())
	case d.mismatch != "":
		add(d.pinV2Option())
	case d.logFailure && d.in.Database.Status == observe.DBUnsupported:
		add(d.freshOption())
	}
	if len(out) == 0 && len(d.others) > 0 {
		add(d.cleanupOption())
	}
	if len(out) == 0 {
		out = append(out, d.inspectOption())
	}
	for i := range out {
		out[i].Rank = i + 1
	}
	return out
}

// downgrade reports whether an older image meets a newer database.
func (d *diagnosis) downgrade() bool {
	return d.has(CodeAheadOfImage) || d.newerStampLogged
}

// pinTarget is the release to run on the good database and its image tag.
func (d *diagnosis) pinTarget() (catalog.Release, string, bool) {
	if d.stamp == nil {
		return catalog.Release{}, "", false
	}
	rel, ok := d.cat.Release(d.releaseFor(*d.stamp))
	if !ok {
		return catalog.Release{}, "", false
	}
	return rel, d.variantFor(rel), true
}

// variantFor keeps the device variant the deployment used when rel has it.
func (d *diagnosis) variantFor(rel catalog.Release) string {
	var wanted []string
	if d.primary != nil {
		wanted = append(wanted, d.primary.tag.Variant)
	}
	wanted = append(wanted, d.in.ConfigVariant)
	for _, m := range d.in.Backups {
		wanted = append(wanted, catalog.ClassifyTag(m.Version).Variant)
	}
	for _, v := range wanted {
		if v != "" && rel.HasVariant(v) {
			return v
		}
	}
	if rel.HasVariant("") || len(rel.Variants) == 0 {
		return ""
	}
	return rel.Variants[0]
}

// pinReason says why the running image does not fit a good database; ""
// when it fits and runs.
func (d *diagnosis) pinReason(rel catalog.Release, variant string) string {
	s := d.primary
	want := rel.ImageTag(variant)
	switch {
	case d.mismatch != "":
		return "the container runs " + d.mismatch
	case s == nil:
		return "no container runs"
	case s.dev:
		return "the container runs the development image " + s.image.Ref
	case d.downgrade():
		return "the container runs " + s.image.Ref + ", older than the database"
	case s.tag.Raw != want:
		return fmt.Sprintf("the container runs %s, not %s", s.image.Ref, want)
	case d.in.ConfigFile != "" && !s.ct.Managed:
		return "the container was started by hand"
	case d.in.ConfigFile != "" && d.in.ConfigVersion != "" && d.configTag() != want:
		return fmt.Sprintf("%s says %s", d.in.ConfigFile, d.configTag())
	case !s.ct.Running() && !d.logFailure:
		return "the container is stopped"
	}
	return ""
}

func (d *diagnosis) configTag() string {
	if d.in.ConfigVariant == "" {
		return d.in.ConfigVersion
	}
	return d.in.ConfigVersion + "-" + d.in.ConfigVariant
}

func (d *diagnosis) pinOption() *Option {
	rel, variant, ok := d.pinTarget()
	if !ok {
		return nil
	}
	reason := d.pinReason(rel, variant)
	if reason == "" {
		return nil
	}
	tag := rel.ImageTag(variant)
	o := &Option{Kind: KindPin,
		Title: fmt.Sprintf("Pin %s, the release that wrote this database", tag),
		Why: fmt.Sprintf("The database is stamped %s and passes its schema probe: the data is intact, only the image is wrong (%s).",
			d.stamp.ID, reason),
		Risk: fmt.Sprintf("Low: %s opens the database as it is, without a migration.", rel.Tag),
	}
	if rel.Head != d.stamp.ID {
		o.Title = fmt.Sprintf("Pin %s, the first release that knows this database", tag)
		o.Risk = fmt.Sprintf("apply migrates the database from %s to %s after a verified backup.", d.stamp.ID, rel.Head)
	}
	if d.mismatch == "a v2 image on SQLite data" && d.in.Database.Status == observe.DBUnsupported {
		o.Risk += " What was created in the empty v2 instance is set aside with its postgresql/ directory."
	}
	if s := d.primary; s != nil && s.tag.Raw == tag && !s.ct.Running() && !d.logFailure && (d.in.ConfigFile == "" || s.ct.Managed) {
		o.Kind, o.Title = KindStart, fmt.Sprintf("Start %s again", tag)
		o.Why = fmt.Sprintf("The database is stamped %s, passes its schema probe, and the container already runs %s; it is just stopped.", d.stamp.ID, tag)
		o.Risk = "None."
		if d.in.ConfigFile == "" {
			o.Commands = append(d.stopOthers(), "docker start "+s.name())
		} else {
			o.Commands = append(d.stopOthers(), d.deploy("apply"))
		}
		return o
	}
	o.Commands = d.pinCommands(rel, variant)
	if d.primary == nil && d.in.ConfigFile != "" && d.configTag() == tag {
		o.Kind, o.Title = KindStart, fmt.Sprintf("Create the %s container with apply", tag)
		o.Why = fmt.Sprintf("The database is stamped %s and passes its schema probe; %s already says %s.", d.stamp.ID, d.in.ConfigFile, tag)
	}
	return o
}

func (d *diagnosis) pinCommands(rel catalog.Release, variant string) []string {
	cmds := d.stopOthers()
	if d.mismatch == "a v2 image on SQLite data" && d.in.Database.Status == observe.DBUnsupported {
		// observe reads PostgreSQL first; while postgresql/ is there the
		// SQLite database is neither seen nor used.
		if d.primary != nil && d.primary.ct.Running() {
			cmds = append(cmds, "docker stop "+d.primary.name())
		}
		cmds = append(cmds, d.moveAside("postgresql", "postgresql.v2-aside", rel.ImageTag(variant)))
	}
	if d.in.ConfigFile == "" {
		return append(cmds, d.rerun(rel.ImageTag(variant))...)
	}
	cmds = append(cmds, d.takeOver()...)
	if d.configTag() != rel.ImageTag(variant) {
		cmds = append(cmds, d.setVersion(rel.Tag, variant))
	}
	return append(cmds, d.deploy("apply"))
}

// pinV2Option handles a v0.x image on v2 data: the v2 release that wrote it
// is not recorded anywhere doctor can read.
func (d *diagnosis) pinV2Option() *Option {
	if d.mismatch != "a v0.x image on v2 data" || d.primary == nil {
		return nil
	}
	v2 := d.cat.LatestFinal()
	o := &Option{Kind: KindPin,
		Title: "Run the v2 release that wrote this data",
		Why: fmt.Sprintf("The data volume holds v2's embedded PostgreSQL; only a v2 image uses it. Take the exact release that ran "+
			"before if you know it (%s is the newest; a newer one migrates the data).", v2.Tag),
		Risk: "gpustack-deploy cannot back up the embedded PostgreSQL yet and refuses to change the image of such a deployment, so " +
			"this is done with docker; copy postgresql/data first.",
	}
	o.Commands = append(d.stopOthers(), "docker stop "+d.primary.name(),
		fmt.Sprintf("docker cp %s:/var/lib/gpustack/postgresql ./%s-postgresql-copy", d.primary.name(), d.primary.name()))
	o.Commands = append(o.Commands, d.rerun(v2.ImageTag(""))...)
	return o
}

// restoreCandidate picks the newest verified backup taken before the
// failure at a release whose revision is on the chain.
func (d *diagnosis) restoreCandidate() (backup.Manifest, bool) {
	best, found, bestScore := backup.Manifest{}, false, -1
	for _, m := range d.in.Backups {
		if !m.Verified {
			continue
		}
		if _, ok := d.cat.Revision(m.Revision); !ok {
			continue
		}
		tag := catalog.ClassifyTag(m.Version)
		if tag.Class != catalog.TagRelease && tag.Class != catalog.TagPrerelease {
			continue
		}
		if _, ok := d.cat.Release(tag.Base); !ok {
			continue
		}
		score := 0
		if d.failedAt.IsZero() || m.Created.Before(d.failedAt) {
			score += 2
		}
		if tag.Class == catalog.TagRelease {
			score++
		}
		// Backups come newest first: the first of the best score wins.
		if score > bestScore {
			best, found, bestScore = m, true, score
		}
	}
	return best, found
}

func (d *diagnosis) restoreOption() *Option {
	m, ok := d.restoreCandidate()
	if !ok {
		return nil
	}
	tag := catalog.ClassifyTag(m.Version)
	when := m.Created.UTC().Format("2006-01-02 15:04 UTC")
	o := &Option{Kind: KindRestore,
		Title: fmt.Sprintf("Restore backup %s (taken %s at %s)", m.ID, when, m.Version),
	}
	at := "revision " + m.Revision
	if rel, ok := d.cat.Release(tag.Base); ok && rel.Head == m.Revision {
		at += ", the head of " + rel.Tag
	}
	before := ""
	if !d.failedAt.IsZero() && m.Created.Before(d.failedAt) {
		before = ", before the failing start at " + d.failedAt.UTC().Format(time.DateTime) + " UTC,"
	}
	o.Why = fmt.Sprintf("It was taken at %s (%s)%s and verified when written (integrity check, revision, schema probe). ", m.Version, at, before)
	if d.in.ConfigFile != "" {
		o.Why += fmt.Sprintf("`gpustack-deploy restore` keeps a safety copy of the database as it is now, writes the backup back, "+
			"starts %s and verifies it. %s must then say version = %q%s, or the next apply changes the version again.",
			m.Version, d.in.ConfigFile, tag.Base, variantClause(tag.Variant))
		o.Commands = append(d.stopOthers(), d.takeOver()...)
		if d.configTag() != m.Version {
			o.Commands = append(o.Commands, d.setVersion(tag.Base, tag.Variant))
		}
		o.Commands = append(o.Commands, d.deploy("restore "+m.ID))
	} else {
		if d.in.Data == "" || d.in.BackupDir == "" || d.primary == nil {
			return nil
		}
		o.Why += fmt.Sprintf("The commands keep a copy of the data directory as it is now, write the backup back and start %s.", m.Version)
		o.Commands = d.dockerRestore(m)
	}
	o.Risk = fmt.Sprintf("Everything changed after %s is lost: users, API keys and models created since. The backup holds %d rows.", when, m.TotalRows())
	o.Risk += d.cacheNote(m.Revision)
	return o
}

func variantClause(v string) string {
	if v == "" {
		return ""
	}
	return fmt.Sprintf(", variant = %q", v)
}

// cacheNote warns when revisions after the backup's touched the model cache.
func (d *diagnosis) cacheNote(from string) string {
	if d.stamp == nil {
		return ""
	}
	steps, err := d.cat.Crossed(from, d.stamp.ID)
	if err != nil {
		return ""
	}
	for _, r := range steps {
		if r.TouchesCache != "" {
			return fmt.Sprintf(" If revision %s ran its cache step, it reorganised the model cache; restoring the database does not "+
				"move it back, and some models may be downloaded again (#1603).", r.ID)
		}
	}
	return ""
}

func (d *diagnosis) inspectOption() Option {
	o := Option{Kind: KindInspect, Title: "Read the whole log before changing anything",
		Why:  "doctor found nothing it can repair with confidence; the full log names the cause.",
		Risk: "None: reading changes nothing.",
	}
	if d.primary != nil {
		o.Commands = append(o.Commands, "docker logs --tail 500 "+d.primary.name())
	}
	for _, s := range d.others {
		if len(s.hits) > 0 {
			o.Commands = append(o.Commands, "docker logs --tail 500 "+s.name())
		}
	}
	if d.in.ConfigFile != "" {
		o.Commands = append(o.Commands, d.deploy("status"))
	}
	return o
}

// cleanupOption removes the other containers on the data volume when they
// are all that is wrong.
func (d *diagnosis) cleanupOption() *Option {
	o := &Option{Kind: KindCleanup, Title: "Remove the other containers that mount the data volume",
		Why:  "The deployment's data is intact; only containers started beside it share its data directory.",
		Risk: "Their logs go with them; the commands save each log to a file first. The data volume is not touched.",
	}
	o.Commands = d.stopOthers()
	for _, s := range d.others {
		o.Commands = append(o.Commands, fmt.Sprintf("docker logs %s > %s.log 2>&1", s.name(), s.name()), "docker rm "+s.name())
	}
	return o
}
