// Package planner decides what apply must do: it compares the desired
// deployments with one observation of the Docker hosts and returns a Plan of
// typed actions, each with the reason it is needed, plus refusals (what must
// not be applied, and what to do instead) and warnings.
//
// Plan is a pure function: no I/O, no clock, no randomness. The same inputs
// give the same plan, which is what makes saved plans and golden tests work.
package planner

import (
	"fmt"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"sort"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// Plan computes the plan for every desired deployment.
func Plan(desired *config.Desired, observed *observe.Observed, cat *catalog.Catalog, opts ...Option) (*plan.Plan, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	p := &plan.Plan{FormatVersion: plan.FormatVersion, Observed: observed.Fingerprint()}
	for _, d := range desired.Deployments {
		od, ok := observed.Deployments[d.Name]
		if !ok {
			return nil, fmt.Errorf("deployment %s was not observed", d.Name)
		}
		if d.IsWorker() {
			token := ""
			if so, ok := observed.Deployments[d.Server]; ok {
				token = so.TokenDigest
			}
			p.Deployments = append(p.Deployments, planWorker(d, od, desired.Deployment(d.Server), token, cat))
			continue
		}
		if o.replaceData[d.Name] {
			p.Deployments = append(p.Deployments, planReplaceData(d, od, cat))
			continue
		}
		p.Deployments = append(p.Deployments, planDeployment(d, od, cat))
	}
	for name := range o.replaceData {
		if _, ok := observed.Deployments[name]; !ok {
			return nil, fmt.Errorf("--replace names %s, which is not a deployment of the files", name)
		}
	}
	sort.SliceStable(p.Deployments, func(i, j int) bool {
		a, b := p.Deployments[i], p.Deployments[j]
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.Name < b.Name
	})
	assignWaves(p, desired)
	return p, nil
}

// target is what the desired version resolves to.
type target struct {
	tag     catalog.Tag
	release *catalog.Release // nil for unresolved dev and floating tags
	head    string           // "" when unknown
	engine  catalog.Engine
}

func resolveTarget(d config.Deployment, od *observe.Deployment, cat *catalog.Catalog) target {
	t := target{tag: catalog.ClassifyTag(d.ImageTag())}
	t.tag.Base, t.tag.Variant = d.Version, d.Variant
	switch t.tag.Class {
	case catalog.TagRelease, catalog.TagPrerelease:
		if rel, ok := cat.Release(d.Version); ok {
			t.release = &rel
		}
	case catalog.TagFloating:
		// A floating tag is what the local image says it is, if present.
		if od.Image != nil && od.Image.Version != "" {
			if rel, ok := cat.Release(od.Image.Version); ok {
				t.release = &rel
			}
		}
	}
	if t.release != nil {
		t.head, t.engine = t.release.Head, t.release.Engine
	} else {
		t.engine = config.Era(t.tag, nil)
	}
	return t
}

type builder struct {
	d   config.Deployment
	od  *observe.Deployment
	cat *catalog.Catalog
	out plan.Deployment
	t   target
	// jump is set by checkJump: the data volume holds SQLite data that
	// moves to the target's embedded PostgreSQL.
	jump bool
}

func (b *builder) refuse(r plan.Refusal) {
	if r.Source == "" && b.d.VersionRange.Filename != "" {
		r.Source = fmt.Sprintf("%s:%d,%d", b.d.VersionRange.Filename, b.d.VersionRange.Start.Line, b.d.VersionRange.Start.Column)
	}
	b.out.Refusals = append(b.out.Refusals, r)
}

func (b *builder) warn(summary, detail string) {
	b.out.Warnings = append(b.out.Warnings, plan.Warning{Summary: summary, Detail: detail})
}

func (b *builder) add(a plan.Action) { b.out.Actions = append(b.out.Actions, a) }

func planDeployment(d config.Deployment, od *observe.Deployment, cat *catalog.Catalog) plan.Deployment {
	b := &builder{d: d, od: od, cat: cat, t: resolveTarget(d, od, cat)}
	b.out = plan.Deployment{Name: d.Name, Host: d.Host, Tag: b.t.tag, Actions: []plan.Action{}}
	b.describeStates()
	b.checkTag()
	b.checkContainerOwnership()
	b.checkDatabase()
	b.planActions()
	return b.out
}

func (b *builder) describeStates() {
	ct := b.od.Container
	if ct != nil {
		b.out.Current = plan.State{Version: ct.Labels[spec.LabelVersion], Image: ct.Image, Container: ct.Name + " (" + ct.State + ")", Health: ct.Health}
		if b.out.Current.Version == "" {
			b.out.Current.Version = tagOf(ct.Image)
		}
		cur := catalog.ClassifyTag(b.out.Current.Version)
		if rel, ok := b.cat.Release(cur.Base); ok {
			b.out.Current.Release = rel.Tag
		}
	}
	db := b.od.Database
	b.out.Current.Engine, b.out.Current.Revision = db.Engine, db.Revision
	b.out.Current.Database = db.Status.String()
	b.out.Target = plan.State{Version: b.d.ImageTag(), Image: b.d.ImageRef(), Container: b.d.ContainerName, Revision: b.t.head, Engine: b.t.engine}
	if b.t.release != nil {
		b.out.Target.Release = b.t.release.Tag
	}
}

func tagOf(ref string) string {
	if i := strings.LastIndex(ref, ":"); i >= 0 && !strings.Contains(ref[i:], "/") {
		return ref[i+1:]
	}
	return "latest"
}

// pinSuggestion is the release to suggest instead of a moving tag: the
// newest release whose head matches the database, else the newest final
// release of the target's era.
func (b *builder) pinSuggestion() string {
	if cur, ok := b.cat.Release(b.out.Current.Release); ok && (b.od.Database.Revision == "" || cur.Head == b.od.Database.Revision) {
		return cur.Tag
	}
	if rev := b.od.Database.Revision; rev != "" {
		if rels := b.cat.ReleasesWithHead(rev); len(rels) > 0 {
			return rels[len(rels)-1].Tag
		}
	}
	var pin string
	for _, r := range b.cat.Releases() {
		if !r.Prerelease() && r.Engine == b.t.engine && (b.d.Variant == "" || r.HasVariant(b.d.Variant)) {
			pin = r.Tag
		}
	}
	return pin
}

func (b *builder) checkTag() {
	p := b.d.Policy
	switch b.t.tag.Class {
	case catalog.TagDev:
		if !p.AllowDev {
			b.refuse(refuseDevTag(b.t.tag, b.pinSuggestion()))
			return
		}
		b.warn(fmt.Sprintf("%s is a development image (allowed by policy)", b.d.ImageTag()),
			"Its database revision is unknown until it starts; the result is checked against the catalog after start.")
	case catalog.TagFloating:
		resolved := ""
		if b.t.release != nil {
			resolved = b.t.release.Tag
		}
		if !p.AllowFloating {
			pin := resolved
			if pin == "" {
				pin = b.pinSuggestion()
			}
			b.refuse(refuseFloating(b.t.tag, resolved, pin))
			return
		}
		if resolved == "" {
			b.warn(fmt.Sprintf("%s is a floating tag (allowed by policy) whose release is not known until the image is pulled", b.d.ImageTag()), "")
		}
	case catalog.TagPrerelease:
		if !p.AllowPrerelease {
			final := strings.SplitN(b.d.Version, "rc", 2)[0]
			b.refuse(refusePrerelease(b.t.tag, final))
		}
	}
	b.checkDowngrade()
}

// checkDowngrade refuses going to an older release whose head is the same
// (a newer head is caught by the database check).
func (b *builder) checkDowngrade() {
	if b.t.release == nil || b.out.Current.Release == "" || b.d.Policy.AllowDowngrade {
		return
	}
	cur, _ := b.cat.Release(b.out.Current.Release)
	if b.t.release.Version().LessThan(cur.Version()) && b.t.release.Head == cur.Head {
		b.refuse(refuseDowngrade(b.out.Current.Release, b.t.release.Tag))
	}
}

func (b *builder) checkContainerOwnership() {
	if ct := b.od.Container; ct != nil && !ct.Managed {
		b.refuse(refuseUnmanaged(ct.Name))
	}
}
