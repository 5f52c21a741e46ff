// Package image builds GPUStack emulator images on the local Docker engine,
// tagged like the real ones (gpustack/gpustack:v0.5.1-cpu), for tests and
// scripts. It compiles cmd/gpustack-emulator once per source hash and builds
// the images through the Engine API with the legacy builder: SQLite-era
// releases FROM scratch, v2 releases FROM the PostgreSQL base image
// (BuildPostgresBase). It never pulls and never runs the docker CLI.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/gpustack-deploy/gpustack-deploy/emulator"
)

// Labels set on every emulator image.
const (
	LabelEmulator = "io.gpustack-deploy.emulator"
	LabelBuild    = "io.gpustack-deploy.emulator-build"
	LabelVersion  = "org.opencontainers.image.version"
	LabelSource   = "org.opencontainers.image.source"
	sourceURL     = "https://github.com/gpustack/gpustack"
)

// Spec describes one emulator image.
type Spec struct {
	Ref     string            // "gpustack/gpustack:v0.5.1-cpu"
	Release string            // "v0.5.1", or "main" for the dev image
	Env     map[string]string // extra ENV baked into the image
}

// SpecFor maps a repository and tag to the emulator image that stands in
// for it: "v0.5.1-cpu" → release v0.5.1, "main-cpu" → release main.
func SpecFor(repo, tag string) (Spec, error) {
	rel, err := emulator.ReleaseForTag(tag)
	if err != nil {
		return Spec{}, fmt.Errorf("emulator image for %s:%s: %w", repo, tag, err)
	}
	return Spec{Ref: repo + ":" + tag, Release: rel.Name}, nil
}

// Build compiles the emulator (cached by source hash under the user cache
// dir) and builds every spec's image, skipping images whose build label
// already matches. moduleRoot is the gpustack-deploy module root.
func Build(ctx context.Context, cli client.APIClient, moduleRoot string, specs ...Spec) error {
	srcHash, err := SourceHash(moduleRoot)
	if err != nil {
		return err
	}
	tools, err := loadToolbox()
	if err != nil {
		return err
	}
	var binary []byte
	for _, spec := range specs {
		dockerfile, err := spec.dockerfile()
		if err != nil {
			return err
		}
		specTools := tools
		if strings.HasPrefix(dockerfile, "FROM "+PostgresBaseRepo+":") {
			// v2: Debian with PostgreSQL has its own shell and tools.
			if _, err := BuildPostgresBase(ctx, cli); err != nil {
				return fmt.Errorf("image %s: %w", spec.Ref, err)
			}
			specTools = &toolbox{}
		} else {
			dockerfile += fmt.Sprintf("# toolbox busybox %s\n", tools.digest)
			if tools.binary != nil {
				dockerfile += "COPY bin/ /bin/\n"
			}
		}
		buildHash := imageHash(srcHash, dockerfile)
		oldID, labels, err := inspect(ctx, cli, spec.Ref)
		if err != nil {
			return err
		}
		if labels[LabelBuild] == buildHash {
			continue
		}
		if binary == nil {
			if binary, err = compile(ctx, moduleRoot, srcHash); err != nil {
				return err
			}
		}
		dockerfile += fmt.Sprintf("LABEL %s=%q\n", LabelBuild, buildHash)
		if err := buildImage(ctx, cli, spec.Ref, dockerfile, binary, specTools); err != nil {
			return err
		}
		if oldID != "" && labels[LabelEmulator] == "true" {
			// The replaced emulator image is now untagged. Removal fails
			// harmlessly while a container or another tag still uses it.
			cli.ImageRemove(ctx, oldID, image.RemoveOptions{PruneChildren: true})
		}
	}
	return nil
}

func (s Spec) dockerfile() (string, error) {
	rel, err := emulator.ParseRelease(s.Release)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", s.Ref, err)
	}
	_, tag, ok := strings.Cut(s.Ref[strings.LastIndex(s.Ref, "/")+1:], ":")
	if !ok {
		return "", fmt.Errorf("image %s: reference has no tag", s.Ref)
	}
	if rel.V2() {
		return s.dockerfileV2(rel), nil
	}
	_, variant, _ := strings.Cut(tag, "-")
	// rocm and dcu images install gpustack under /root/.local/bin and point
	// ENTRYPOINT there (facts §1.4); everything else has one binary on PATH.
	bin := "/usr/local/bin/gpustack"
	var b strings.Builder
	b.WriteString("FROM scratch\n")
	b.WriteString("COPY gpustack /usr/local/bin/gpustack\n")
	if variant == "rocm" || variant == "dcu" {
		bin = "/root/.local/bin/gpustack"
		b.WriteString("COPY gpustack " + bin + "\n")
	}
	b.WriteString("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
	s.writeEnvAndLabels(&b, rel)
	fmt.Fprintf(&b, "ENTRYPOINT [%q, \"start\"]\n", bin)
	return b.String(), nil
}

// dockerfileV2 builds on the PostgreSQL base image. GPUStack's v2 image
// runs /usr/bin/entrypoint.sh and s6; the emulator binary takes its place,
// so container arguments are still `gpustack start` flags.
func (s Spec) dockerfileV2(rel emulator.Release) string {
	var b strings.Builder
	b.WriteString("FROM " + PostgresBaseRef() + "\n")
	b.WriteString("COPY gpustack /usr/bin/gpustack\n")
	s.writeEnvAndLabels(&b, rel)
	b.WriteString("VOLUME /var/lib/gpustack\n")
	b.WriteString("ENTRYPOINT [\"/usr/bin/gpustack\", \"start\"]\n")
	return b.String()
}

func (s Spec) writeEnvAndLabels(b *strings.Builder, rel emulator.Release) {
	fmt.Fprintf(b, "ENV %s=%s\n", emulator.EnvRelease, strconv.Quote(rel.Name))
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "ENV %s=%s\n", k, strconv.Quote(s.Env[k]))
	}
	fmt.Fprintf(b, "LABEL %s=%q %s=%q %s=\"true\"\n", LabelVersion, rel.Name, LabelSource, sourceURL, LabelEmulator)
}

// imageHash keys an image on the emulator sources and its Dockerfile, so a
// changed Env or release rebuilds even when the binary did not change.
func imageHash(srcHash, dockerfile string) string {
	sum := sha256.Sum256([]byte(srcHash + "\x00" + dockerfile))
	return hex.EncodeToString(sum[:8])
}

// inspect returns the ID and labels of ref's image, or "" if there is none.
func inspect(ctx context.Context, cli client.APIClient, ref string) (string, map[string]string, error) {
	info, err := cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	if info.Config == nil {
		return info.ID, nil, nil
	}
	return info.ID, info.Config.Labels, nil
}

func buildImage(ctx context.Context, cli client.APIClient, ref, dockerfile string, binary []byte, tools *toolbox) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(0, 0)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"gpustack", 0o755, binary}, {"bin/busybox", 0o755, tools.binary}} {
		if f.data == nil {
			continue
		}
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("build context for %s: %w", ref, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("build context for %s: %w", ref, err)
		}
	}
	for _, applet := range toolboxApplets {
		if tools.binary == nil {
			break
		}
		hdr := &tar.Header{Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: now, Typeflag: tar.TypeSymlink}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("build context for %s: %w", ref, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("build context for %s: %w", ref, err)
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1, // Docker 20.10 here; no BuildKit session
	})
	if err != nil {
		return fmt.Errorf("build image %s: %w", ref, err)
	}
	defer resp.Body.Close()
	var log bytes.Buffer
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, &log, 0, false, nil); err != nil {
		var jerr *jsonmessage.JSONError
		if errors.As(err, &jerr) {
			return fmt.Errorf("build image %s: %w\n%s", ref, err, tail(log.String(), 2000))
		}
		return fmt.Errorf("build image %s: %w", ref, err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
