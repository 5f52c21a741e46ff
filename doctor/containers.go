package doctor

import (
	"fmt"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

// subject is one container the diagnosis looks at, with what its image
// turned out to be.
type subject struct {
	ct      *observe.Container
	image   Image
	tail    []string
	primary bool

	tag catalog.Tag
	// version is what the image says it is: the log's "GPUStack version:"
	// line (what really ran) or else the OCI version label.
	version, versionEvidence string
	// dev is true for development builds (dev tags, "v0.0.0", "main").
	dev bool
	// release is the catalog release the image is, when known.
	release *catalog.Release
	// era is the database engine the image uses; empty when unknown.
	era catalog.Engine
	// hits are the failure signatures of the container's last run.
	hits []logHit
}

func (s *subject) name() string { return s.ct.Name }

// prefix names the container in summaries about other containers.
func (s *subject) prefix() string {
	if s.primary {
		return ""
	}
	return "container " + s.ct.Name + ": "
}

func (d *diagnosis) identify(ct *observe.Container, img Image, tail []string, primary bool) *subject {
	s := &subject{ct: ct, image: img, tail: tail, primary: primary}
	s.tag = catalog.ClassifyTag(img.Tag())
	if v, line := logVersion(tail); v != "" {
		s.version, s.versionEvidence = v, line
	} else if img.Version != "" {
		s.version = img.Version
		s.versionEvidence = "image label org.opencontainers.image.version=" + img.Version
	}
	base := ""
	vt := catalog.ClassifyTag(s.version)
	switch {
	case s.version == "":
	case strings.TrimPrefix(vt.Base, "v") == "0.0.0" || vt.Class == catalog.TagDev:
		s.dev = true
	case vt.Class == catalog.TagRelease || vt.Class == catalog.TagPrerelease:
		base = vt.Base
	}
	if base == "" && !s.dev && (s.tag.Class == catalog.TagRelease || s.tag.Class == catalog.TagPrerelease) {
		base = s.tag.Base
	}
	if s.tag.Class == catalog.TagDev {
		s.dev = true
	}
	if base != "" {
		if rel, ok := d.cat.Release(base); ok {
			s.release = &rel
		}
		s.era = config.Era(catalog.ClassifyTag(base), s.release)
	} else {
		s.era = tagEra(s.tag)
	}
	s.hits = scanLog(lastRun(tail))
	return s
}

// tagEra is the era a tag implies without a version to go by; empty when
// the tag alone cannot tell (latest, main).
func tagEra(t catalog.Tag) catalog.Engine {
	switch {
	case t.Variant != "":
		return catalog.EngineSQLite
	case t.Base == "latest" || t.Base == "main" || t.Class == catalog.TagUnknown:
		return ""
	case t.Base == "dev" || strings.HasPrefix(t.Base, "dev-"):
		return catalog.EngineEmbeddedPostgres
	}
	return config.Era(t, nil)
}

func (d *diagnosis) checkContainers() {
	if d.primary == nil {
		if d.in.Deployment != "" {
			d.add(Finding{Code: CodeAbsent, Severity: Warning,
				Summary: "the deployment has no container",
				Detail:  "Nothing runs GPUStack for this deployment; apply creates the container.",
			})
		}
	} else {
		d.checkState(d.primary)
		d.checkTag(d.primary)
		d.checkLog(d.primary)
		if d.in.ConfigFile != "" && !d.primary.ct.Managed {
			d.add(Finding{Code: CodeUnmanaged, Severity: Warning,
				Summary: fmt.Sprintf("container %s was not created by gpustack-deploy", d.primary.name()),
				Detail: "It has the deployment's container name but not its label, so apply and restore refuse to touch it " +
					"(gpustack-deploy never changes containers it does not own). Remove it with docker before they can run.",
			})
		}
	}
	for _, o := range d.others {
		state := o.ct.State
		if !o.ct.Running() {
			state = fmt.Sprintf("%s, code %d", o.ct.State, o.ct.ExitCode)
		}
		sev := Warning
		if o.ct.Running() && (d.primary == nil || d.primary.ct.Running()) {
			sev = Error
		}
		d.add(Finding{Code: CodeSharedVolume, Severity: sev,
			Summary: fmt.Sprintf("container %s (%s, %s) also mounts the data volume", o.name(), o.image.Ref, state),
			Detail: "Two GPUStack containers on one data directory migrate and write the same database and share the worker identity " +
				"(#3694, #1368). A container started by hand on the volume is also how a development image reaches production data (#1572). " +
				"Remove it (docker rm " + o.name() + ") once its log is no longer needed.",
		})
		d.checkTag(o)
		d.checkLog(o)
	}
}

func (d *diagnosis) checkState(s *subject) {
	ct := s.ct
	switch ct.State {
	case "running":
		if ct.Health != "" && ct.Health != "ok" {
			d.add(Finding{Code: CodeUnhealthy, Severity: Error,
				Summary:  fmt.Sprintf("container %s runs but /healthz says %s", ct.Name, ct.Health),
				Detail:   "GPUStack answers /healthz only after its migrations finished; while they run, or after they failed, the port refuses connections.",
				Evidence: "GET /healthz: " + ct.Health,
			})
		}
	case "restarting":
		d.add(Finding{Code: CodeRestarting, Severity: Error,
			Summary: fmt.Sprintf("container %s is restarting (last exit code %d)", ct.Name, ct.ExitCode),
			Detail:  "Its restart policy (" + dash(ct.Restart) + ") starts it again after every failed start; each start retries the same migration.",
		})
	case "paused":
		d.add(Finding{Code: CodeExited, Severity: Warning,
			Summary: fmt.Sprintf("container %s is paused", ct.Name),
			Detail:  "A paused container serves nothing; `docker unpause` resumes it.",
		})
	default:
		detail := fmt.Sprintf("The container is %s with exit code %d.", ct.State, ct.ExitCode)
		if len(s.hits) > 0 {
			detail += " Its log shows why."
			if ct.ExitCode == 0 {
				detail += " Before v2.1.1 GPUStack logs a failed start and still exits 0: exit code 0 is no proof of success."
			}
		} else {
			detail += " The end of its log shows no known failure; it may have been stopped by hand, or the log was cut."
		}
		d.add(Finding{Code: CodeExited, Severity: Error,
			Summary: fmt.Sprintf("container %s is not running (%s, exit code %d)", ct.Name, ct.State, ct.ExitCode),
			Detail:  detail,
		})
	}
}

func (d *diagnosis) checkTag(s *subject) {
	tag := s.tag
	switch tag.Class {
	case catalog.TagDev:
		d.add(Finding{Code: CodeDevTag, Severity: Warning,
			Summary: fmt.Sprintf("%s%q is a development tag", s.prefix(), tag.Raw),
			Detail: "Development images move with every push, stamp revisions no release knows and can leave a released revision " +
				"half-applied; GPUStack does not support upgrading from or to them (#582, #1572, #2602).",
			Evidence: s.image.Ref,
		})
	case catalog.TagFloating:
		detail := "A floating tag points at whatever was pushed last; `latest` jumped from the v0.7 line to v2 when v2.0.0 was tagged."
		if s.version != "" {
			detail += " This image reports " + s.version + "."
		}
		d.add(Finding{Code: CodeFloatingTag, Severity: Warning,
			Summary:  fmt.Sprintf("%s%q is a floating tag", s.prefix(), tag.Raw),
			Detail:   detail,
			Evidence: firstNonEmpty(s.versionEvidence, s.image.Ref),
		})
	case catalog.TagPrerelease:
		d.add(Finding{Code: CodePrerelease, Severity: Warning,
			Summary:  fmt.Sprintf("%s%q is a release candidate", s.prefix(), tag.Raw),
			Detail:   "GPUStack's upgrade guide says not to upgrade from or to rc builds; their migrations were still edited before the final release.",
			Evidence: s.image.Ref,
		})
	case catalog.TagRelease:
		if s.version == "" {
			return
		}
		vt := catalog.ClassifyTag(s.version)
		if s.dev || strings.TrimPrefix(vt.Base, "v") != strings.TrimPrefix(tag.Base, "v") {
			d.add(Finding{Code: CodeNotItsTag, Severity: Warning,
				Summary:  fmt.Sprintf("%simage %s reports version %s", s.prefix(), s.image.Ref, s.version),
				Detail:   "Images have reported another version than their tag (#2798, #1077, #3469); what the image reports is what ran.",
				Evidence: s.versionEvidence,
			})
		}
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// checkConfig compares the container with what the file says.
func (d *diagnosis) checkConfig() {
	if d.in.ConfigFile == "" || d.primary == nil || d.in.ConfigVersion == "" {
		return
	}
	want := d.in.ConfigVersion
	if d.in.ConfigVariant != "" {
		want += "-" + d.in.ConfigVariant
	}
	if got := d.primary.image.Tag(); got != want {
		d.add(Finding{Code: CodeConfigDrift, Severity: Info,
			Summary: fmt.Sprintf("%s says %s, the container runs %s", d.in.ConfigFile, want, got),
			Detail:  "apply would replace the container with the file's version.",
		})
	}
}
