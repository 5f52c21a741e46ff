package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// HelperImage is the image of the throw-away containers gpustack-deploy
// creates to reach a volume that no container mounts. It is imported from
// an empty file system on first use, so it needs no registry, and its
// containers are created but never started.
const HelperImage = "gpustack-deploy/volume-helper:1"

// HelperMount is a volume or host path a helper container mounts.
type HelperMount struct {
	Volume   string
	HostPath string
	Target   string
	ReadOnly bool
}

// ensureHelperImage imports HelperImage when it is absent.
func (c *Client) ensureHelperImage(ctx context.Context) error {
	img, err := c.InspectImage(ctx, HelperImage)
	if err != nil || img != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "helper/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
		return fmt.Errorf("build helper image: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("build helper image: %w", err)
	}
	rc, err := c.api.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, HelperImage, image.ImportOptions{
		Changes: []string{`LABEL ` + spec.LabelRole + `=` + spec.RoleHelper, `CMD ["/helper/never-started"]`},
	})
	if err != nil {
		return fmt.Errorf("import helper image %s: %w", HelperImage, err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("import helper image %s: %w", HelperImage, err)
	}
	return nil
}

// CreateHelper creates a container that is never started and mounts the
// given volumes, so that files can be copied in and out of them through the
// Engine API. deployment labels it with the deployment it serves. The caller
// removes it with RemoveContainer.
func (c *Client) CreateHelper(ctx context.Context, deployment string, mounts ...HelperMount) (string, error) {
	if err := c.ensureHelperImage(ctx); err != nil {
		return "", err
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return "", fmt.Errorf("helper name: %w", err)
	}
	host := &container.HostConfig{}
	for _, m := range mounts {
		addMount(host, m.Volume, m.HostPath, m.Target, m.ReadOnly)
	}
	cfg := &container.Config{
		Image: HelperImage,
		Labels: map[string]string{
			spec.LabelRole:       spec.RoleHelper,
			spec.LabelDeployment: deployment,
		},
	}
	name := "gpustack-deploy-helper-" + hex.EncodeToString(suffix)
	resp, err := c.api.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		return "", fmt.Errorf("create helper container: %w", err)
	}
	return resp.ID, nil
}
