package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// ToolResult is the outcome of a shell script run by RunTool.
type ToolResult struct {
	Stdout, Stderr []byte
	ExitCode       int64
}

// Tool is a POSIX shell script to run in a one-off container.
type Tool struct {
	// Image must be present locally and have /bin/sh, as GPUStack's images do.
	Image string
	// Deployment labels the container with the deployment it works for.
	Deployment string
	Script     string
	// Args are the script's positional parameters ($1, $2 …).
	Args   []string
	Mounts []HelperMount
	// Env is the script's environment ("KEY=value").
	Env []string
	// User runs the script as another user ("9999:9999"); root when empty.
	User string
	// Input, when set, is a tar stream copied into InputDir of the
	// container before it starts: how a file reaches a tool that has no
	// network and no standard input.
	Input    io.Reader
	InputDir string
	// Network is the network mode ("bridge", "host", a network name);
	// "none" when empty: only tools that must reach a database get one.
	Network string
	// Output, when set, is a file the script writes; once the container
	// has exited with code 0, its content is streamed to OutputTo before
	// the container is removed. Binary output must take this way: a
	// container's log is line-oriented and may alter it.
	Output   string
	OutputTo func(io.Reader) error
}

// RunTool runs t in a one-off container with no network and waits for it;
// the container is removed afterwards whatever happens. It is how
// gpustack-deploy counts, copies, checks and removes files inside volumes:
// the Engine API can read and write files, but not walk, hash or delete
// them.
func (c *Client) RunTool(ctx context.Context, t Tool) (ToolResult, error) {
	var res ToolResult
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return res, fmt.Errorf("tool container name: %w", err)
	}
	user := t.User
	if user == "" {
		user = "0:0"
	}
	network := t.Network
	if network == "" {
		network = "none"
	}
	host := &container.HostConfig{NetworkMode: container.NetworkMode(network)}
	for _, m := range t.Mounts {
		addMount(host, m.Volume, m.HostPath, m.Target, m.ReadOnly)
	}
	// An image VOLUME the tool does not mount (GPUStack's v2 image
	// declares /var/lib/gpustack) would get an anonymous volume per run:
	// a tmpfs takes its place and goes with the container.
	if img, err := c.api.ImageInspect(ctx, t.Image); err == nil && img.Config != nil {
		for p := range img.Config.Volumes {
			if !mountedAt(t.Mounts, p) {
				if host.Tmpfs == nil {
					host.Tmpfs = map[string]string{}
				}
				host.Tmpfs[p] = ""
			}
		}
	}
	cfg := &container.Config{
		Image:      t.Image,
		Entrypoint: []string{"/bin/sh", "-c", t.Script},
		Cmd:        append([]string{"sh"}, t.Args...),
		Env:        t.Env,
		User:       user,
		Labels:     map[string]string{spec.LabelRole: spec.RoleHelper, spec.LabelDeployment: t.Deployment},
	}
	name := "gpustack-deploy-tool-" + hex.EncodeToString(suffix)
	created, err := c.api.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		return res, fmt.Errorf("create tool container from %s: %w", t.Image, err)
	}
	defer c.removeTool(context.WithoutCancel(ctx), created.ID)
	if t.Input != nil {
		if err := c.CopyIn(ctx, created.ID, t.InputDir, t.Input); err != nil {
			return res, fmt.Errorf("tool container %s: %w", name, err)
		}
	}
	// Registered before the start: "not-running" would fire at once on a
	// container that is only created.
	exited, waitErr := c.api.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := c.StartContainer(ctx, created.ID); err != nil {
		return res, err
	}
	select {
	case r := <-exited:
		res.ExitCode = r.StatusCode
	case err := <-waitErr:
		return res, fmt.Errorf("wait for tool container %s: %w", name, err)
	}
	rc, err := c.api.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return res, fmt.Errorf("read output of tool container %s: %w", name, err)
	}
	defer rc.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, rc); err != nil {
		return res, fmt.Errorf("read output of tool container %s: %w", name, err)
	}
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	if t.Output != "" && t.OutputTo != nil && res.ExitCode == 0 {
		if err := c.copyOutput(ctx, created.ID, t.Output, t.OutputTo); err != nil {
			return res, fmt.Errorf("tool container %s: %w", name, err)
		}
	}
	return res, nil
}

// copyOutput streams the regular file p of the stopped container id to fn.
func (c *Client) copyOutput(ctx context.Context, id, p string, fn func(io.Reader) error) error {
	rc, _, err := c.api.CopyFromContainer(ctx, id, p)
	if err != nil {
		return fmt.Errorf("copy %s out: %w", p, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		return fmt.Errorf("copy %s out: %w", p, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("copy %s out: not a regular file", p)
	}
	if err := fn(io.LimitReader(tr, hdr.Size)); err != nil {
		return fmt.Errorf("copy %s out: %w", p, err)
	}
	return nil
}

// removeTool removes a one-off container with its anonymous volumes: an
// image that declares a VOLUME (GPUStack's v2 image declares
// /var/lib/gpustack) gets one for every container that mounts nothing
// there. Named volumes and host directories are never removed this way.
// Deployment containers are removed with RemoveContainer, which keeps
// every volume: a container made by hand may keep its data in one.
func (c *Client) removeTool(ctx context.Context, id string) {
	_ = c.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
}

// mountedAt reports whether one of mounts has target p.
func mountedAt(mounts []HelperMount, p string) bool {
	for _, m := range mounts {
		if path.Clean(m.Target) == path.Clean(p) {
			return true
		}
	}
	return false
}
