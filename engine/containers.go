package engine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// CreateContainer creates (does not start) the container described by s.
func (c *Client) CreateContainer(ctx context.Context, s spec.Container) (string, error) {
	resp, err := c.api.ContainerCreate(ctx, containerConfig(s), hostConfig(s), nil, nil, s.Name)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", s.Name, err)
	}
	return resp.ID, nil
}

// addMount mounts a named volume, or binds a host directory. Host
// directories go through Binds, not Mounts, because only Binds makes the
// engine create a missing directory (API 1.41 has no CreateMountpoint).
func addMount(host *container.HostConfig, volume, hostPath, target string, readOnly bool) {
	if volume != "" {
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeVolume, Source: volume, Target: target, ReadOnly: readOnly})
		return
	}
	bind := hostPath + ":" + target
	if readOnly {
		bind += ":ro"
	}
	host.Binds = append(host.Binds, bind)
}

// StartContainer starts a created or stopped container.
func (c *Client) StartContainer(ctx context.Context, id string) error {
	if err := c.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", short(id), err)
	}
	return nil
}

// StopContainer stops a container, giving it grace before SIGKILL. Stopping
// a stopped container is not an error.
func (c *Client) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	secs := int(grace / time.Second)
	if err := c.api.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil && !IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", short(id), err)
	}
	return nil
}

// RemoveContainer removes a container but never its volumes. Removing a
// container that is already gone is not an error.
func (c *Client) RemoveContainer(ctx context.Context, id string) error {
	err := c.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: false})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", short(id), err)
	}
	return nil
}

// RenameContainer gives a container a new name.
func (c *Client) RenameContainer(ctx context.Context, id, name string) error {
	if err := c.api.ContainerRename(ctx, id, name); err != nil {
		return fmt.Errorf("rename container %s to %s: %w", short(id), name, err)
	}
	return nil
}

// SetRestartPolicy changes the restart policy of a container.
func (c *Client) SetRestartPolicy(ctx context.Context, id, policy string) error {
	_, err := c.api.ContainerUpdate(ctx, id, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(policy)}})
	if err != nil {
		return fmt.Errorf("set restart policy of %s to %s: %w", short(id), policy, err)
	}
	return nil
}

// ListByVolume returns the containers (running or not) that mount the
// named volume or host directory.
func (c *Client) ListByVolume(ctx context.Context, source string) ([]*Container, error) {
	return c.list(ctx, filters.Arg("volume", source))
}

// list inspects every container (running or not) the filter selects.
func (c *Client) list(ctx context.Context, filter filters.KeyValuePair) ([]*Container, error) {
	list, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filter)})
	if err != nil {
		return nil, fmt.Errorf("list containers with %s=%s: %w", filter.Key, filter.Value, err)
	}
	out := make([]*Container, 0, len(list))
	for _, s := range list {
		ct, err := c.InspectContainer(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		if ct != nil {
			out = append(out, ct)
		}
	}
	return out, nil
}

// WaitExit returns a channel that receives the exit code once the container
// stops, or an error. It does not block.
func (c *Client) WaitExit(ctx context.Context, id string) (<-chan int64, <-chan error) {
	out := make(chan int64, 1)
	errc := make(chan error, 1)
	respc, ec := c.api.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	go func() {
		select {
		case r := <-respc:
			out <- r.StatusCode
		case err := <-ec:
			errc <- fmt.Errorf("wait for container %s: %w", short(id), err)
		}
	}()
	return out, errc
}

// FollowLogs streams the container's stdout and stderr, line by line, from
// since (zero = from the start) until ctx ends or the container stops. The
// channel is closed when the stream ends.
func (c *Client) FollowLogs(ctx context.Context, id string, since time.Time) (<-chan string, error) {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true}
	if !since.IsZero() {
		opts.Since = strconv.FormatInt(since.Unix(), 10)
	}
	rc, err := c.api.ContainerLogs(ctx, id, opts)
	if err != nil {
		return nil, fmt.Errorf("follow logs of %s: %w", short(id), err)
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		pw.CloseWithError(err)
		rc.Close()
	}()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return lines, nil
}

// Logs returns the last tail lines of the container's output ("all" for everything).
func (c *Client) Logs(ctx context.Context, id string, tail string) ([]byte, error) {
	rc, err := c.api.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail})
	if err != nil {
		return nil, fmt.Errorf("read logs of %s: %w", short(id), err)
	}
	defer rc.Close()
	var buf limitedBuffer
	buf.max = 16 << 20
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return nil, fmt.Errorf("read logs of %s: %w", short(id), err)
	}
	return buf.b, nil
}

// limitedBuffer keeps at most max bytes, dropping the rest.
type limitedBuffer struct {
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	room := l.max - len(l.b)
	if room > 0 {
		if len(p) < room {
			room = len(p)
		}
		l.b = append(l.b, p[:room]...)
	}
	return len(p), nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
