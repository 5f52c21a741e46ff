// Package importer describes a GPUStack container started by hand (docker
// run …) as a gpustack-deploy configuration file, so that gpustack-deploy
// can manage it from then on.
//
// It reads what the engine reports about the container and its image and
// writes HCL. Whatever the file cannot express (an extra published port, a
// network other than bridge or host, capabilities, a healthcheck …) is
// listed, never dropped silently. Secret values are never written: each
// becomes a sensitive variable, and the values are returned apart for the
// caller to check the file with, in memory.
//
// It is pure: it talks to no engine and touches no file. The import
// command inspects the container, writes the file, loads it with config
// and records the adoption; Verify tells it whether the loaded file
// describes the container exactly.
package importer

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// Input is what import describes.
type Input struct {
	Inspection engine.Inspection
	// Name is the deployment name; empty derives it from the container's.
	Name string
	// Catalog is the release catalog; nil means catalog.Default().
	Catalog *catalog.Catalog
}

// Result is the file and what the caller must tell the user.
type Result struct {
	// Name is the deployment name the file declares.
	Name string
	// File is the configuration, formatted.
	File []byte
	// Secrets maps each sensitive variable the file declares to its value
	// in the container. It must never be written or printed.
	Secrets map[string]string
	// SecretSources says where each variable's value is in the container,
	// for the user: "env GPUSTACK_TOKEN", "argument --token".
	SecretSources map[string]string
	// Unexpressed lists what the container has that the file cannot say.
	// When it is not empty the container must not be adopted: the next
	// plan replaces it.
	Unexpressed []string
	// Warnings are what the user must act on: a moving tag (development,
	// release candidate, floating) kept with the policy that allows it.
	Warnings []string
	// Notes are what the user must know about the file: a cache split
	// declared, a data directory moved.
	Notes []string
	// CacheSplit is true when the file declares a cache volume the
	// container does not mount: the next plan moves the cache into it.
	CacheSplit bool
	// Head is the Alembic head of the release, as the planner resolves it
	// ("" for development tags and unresolved floating tags).
	Head string
}

var (
	deploymentNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	nameCharsRe      = regexp.MustCompile(`[^a-z0-9_-]+`)
)

// Describe writes the configuration that reproduces the container. It
// fails only when no useful file can be written: a container gpustack-deploy
// already manages, an image pinned by digest or with a tag that is not
// GPUStack's, GPUStack's data directory in no volume.
func Describe(in Input) (*Result, error) {
	j := in.Inspection.Container
	if j.ContainerJSONBase == nil || j.Config == nil || j.HostConfig == nil {
		return nil, fmt.Errorf("the engine's description of the container is incomplete")
	}
	name := strings.TrimPrefix(j.Name, "/")
	if owner := j.Config.Labels[spec.LabelDeployment]; owner != "" {
		return nil, fmt.Errorf("container %s already belongs to deployment %q of gpustack-deploy; import is for containers made by hand", name, owner)
	}
	cat := in.Catalog
	if cat == nil {
		cat = catalog.Default()
	}
	d := &describer{j: j, img: in.Inspection.Image, cat: cat, res: &Result{Secrets: map[string]string{}, SecretSources: map[string]string{}}}
	d.draft.containerName = name
	d.draft.name = in.Name
	if d.draft.name == "" {
		d.draft.name = DeploymentName(name)
	}
	if !deploymentNameRe.MatchString(d.draft.name) {
		return nil, fmt.Errorf("%q cannot name a deployment: use 1 to 63 lowercase letters, digits, \"_\" and \"-\", starting with a letter or digit (--name)", d.draft.name)
	}
	if err := d.image(); err != nil {
		return nil, err
	}
	d.args()
	d.env()
	if err := d.volumes(); err != nil {
		return nil, err
	}
	d.ports()
	d.runOptions()
	d.labels()
	d.restart()
	d.unexpressedHost()
	d.res.Name = d.draft.name
	d.res.File = d.draft.render(d.res)
	return d.res, nil
}

// DeploymentName derives a deployment name from a container name:
// lowercase, "gpustack-" dropped, other characters turned into "-".
func DeploymentName(container string) string {
	s := strings.ToLower(container)
	if rest := strings.TrimPrefix(s, "gpustack-"); rest != "" {
		s = rest
	}
	s = nameCharsRe.ReplaceAllString(s, "-")
	s = strings.Trim(s, "-_")
	if len(s) > 63 {
		s = strings.Trim(s[:63], "-_")
	}
	if s == "" {
		return "server"
	}
	return s
}

// describer holds one container's inspection while its draft is filled.
type describer struct {
	j     container.InspectResponse
	img   *image.InspectResponse
	cat   *catalog.Catalog
	res   *Result
	draft draft
	// tag and rel are the image tag and, for a release known to the
	// catalog, the release; era follows from them as in config.
	tag catalog.Tag
	rel *catalog.Release
	era catalog.Engine
	// dataDir and cacheDir are where the container keeps its data and
	// model cache; cacheFlag is true when --cache-dir or
	// GPUSTACK_CACHE_DIR set cacheDir.
	dataDir, cacheDir string
	cacheFlag         bool
	// accounted marks the mount destinations the draft describes.
	accounted map[string]bool
}

func (d *describer) unexpressed(format string, args ...any) {
	d.res.Unexpressed = append(d.res.Unexpressed, fmt.Sprintf(format, args...))
}

func (d *describer) warn(format string, args ...any) {
	d.res.Warnings = append(d.res.Warnings, fmt.Sprintf(format, args...))
}

func (d *describer) note(format string, args ...any) {
	d.res.Notes = append(d.res.Notes, fmt.Sprintf(format, args...))
}

// image splits the image reference into repository, version and variant,
// and sets the policy a moving tag needs.
func (d *describer) image() error {
	ref := d.j.Config.Image
	if strings.Contains(ref, "@") || strings.HasPrefix(ref, "sha256:") {
		return fmt.Errorf("container %s runs image %s, pinned by digest or ID; gpustack-deploy picks images by tag. Start it from a tag such as gpustack/gpustack:v0.7.1, or write the file by hand", d.draft.containerName, ref)
	}
	repo, tag := ref, "latest"
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	d.tag = catalog.ClassifyTag(tag)
	if d.tag.Class == catalog.TagUnknown {
		return fmt.Errorf("container %s runs %s, whose tag %q is none of GPUStack's (a release such as v0.7.1-cpu, main, dev, latest); retag the image or write the file by hand", d.draft.containerName, ref, tag)
	}
	d.draft.image, d.draft.version, d.draft.variant = repo, d.tag.Base, d.tag.Variant
	if d.tag.Class == catalog.TagRelease || d.tag.Class == catalog.TagPrerelease {
		if rel, ok := d.cat.Release(d.tag.Base); ok {
			d.rel = &rel
			d.res.Head = rel.Head
		}
	}
	d.era = config.Era(d.tag, d.rel)
	switch d.tag.Class {
	case catalog.TagDev:
		d.draft.policy = "allow_dev"
		d.warn("%s is a development tag: the file keeps it and sets policy { allow_dev = true }. GPUStack does not support upgrades from development images; pin a release (version = \"v…\") as soon as you can.", tag)
	case catalog.TagPrerelease:
		d.draft.policy = "allow_prerelease"
		d.warn("%s is a release candidate: the file keeps it and sets policy { allow_prerelease = true }. Pin the final release as soon as it is out.", tag)
	case catalog.TagFloating:
		d.draft.policy = "allow_floating"
		d.warn("%s is a floating tag that moves with every release: the file keeps it and sets policy { allow_floating = true }. Pin the release it runs (version = \"v…\") before the next upgrade.", tag)
		// The planner resolves a floating tag by the image's version label.
		if d.img != nil && d.img.Config != nil {
			if rel, ok := d.cat.Release(d.img.Config.Labels["org.opencontainers.image.version"]); ok {
				d.res.Head = rel.Head
			}
		}
	}
	return nil
}
