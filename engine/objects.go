package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/pkg/stdcopy"
)

// PullImage pulls ref, writing progress to w (nil discards it). tty selects
// the interactive progress bars; without it only the lines that say what
// happened are written, none per layer (see showPull).
func (c *Client) PullImage(ctx context.Context, ref string, w io.Writer, tty bool) error {
	rc, err := c.api.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer rc.Close()
	if w == nil {
		w = io.Discard
	}
	if err := showPull(rc, w, tty); err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	return nil
}

// CreateVolume creates a named volume with labels. It is not an error when
// the volume exists already; its labels are then left as they are.
func (c *Client) CreateVolume(ctx context.Context, name string, labels map[string]string) error {
	if _, err := c.api.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels}); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}

// ExecResult is the outcome of a command run inside a container.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Exec runs cmd inside a running container and waits for it.
func (c *Client) Exec(ctx context.Context, id string, cmd []string) (ExecResult, error) {
	var res ExecResult
	created, err := c.api.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return res, fmt.Errorf("exec %v in %s: %w", cmd, short(id), err)
	}
	att, err := c.api.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return res, fmt.Errorf("exec %v in %s: %w", cmd, short(id), err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		return res, fmt.Errorf("exec %v in %s: read output: %w", cmd, short(id), err)
	}
	insp, err := c.api.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return res, fmt.Errorf("exec %v in %s: %w", cmd, short(id), err)
	}
	res.Stdout, res.Stderr, res.ExitCode = stdout.Bytes(), stderr.Bytes(), insp.ExitCode
	return res, nil
}

// RemoveVolume deletes a named volume and everything in it. The engine
// refuses while a container (running or not) uses it.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	if err := c.api.VolumeRemove(ctx, name, false); err != nil {
		return fmt.Errorf("delete volume %s: %w", name, err)
	}
	return nil
}
