package engine

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
)

// Inspection is all the engine reports about a container and its image,
// untranslated. import reads it to notice whatever a deployment file
// cannot express (capabilities, extra networks, a healthcheck …), which
// the small Container value leaves out on purpose.
type Inspection struct {
	Container container.InspectResponse
	// Image is the container's image, nil when it is no longer on the host.
	Image *image.InspectResponse
}

// InspectFull returns the container named or identified by ref and its
// image, or nil when there is no such container.
func (c *Client) InspectFull(ctx context.Context, ref string) (*Inspection, error) {
	j, err := c.api.ContainerInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect container %s: %w", ref, err)
	}
	out := &Inspection{Container: j}
	img, err := c.api.ImageInspect(ctx, j.Image)
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("inspect image %s of container %s: %w", short(j.Image), ref, err)
	default:
		out.Image = &img
	}
	return out, nil
}
