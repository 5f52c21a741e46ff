package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ExecOptions describe a command run by ExecStream.
type ExecOptions struct {
	Cmd []string
	// Env is added to the container's environment for this command only.
	Env []string
	// User runs the command as another user ("9999:9999"); empty keeps
	// the container's.
	User string
	// Stdin, when set, is copied to the command's standard input, which
	// is closed at its end.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output as it is written;
	// nil discards it.
	Stdout, Stderr io.Writer
}

// ExecStream runs a command inside a running container, streaming its
// input and output instead of buffering them as Exec does: it is how a
// pg_dump of hundreds of megabytes reaches a backup file. It returns the
// command's exit code.
func (c *Client) ExecStream(ctx context.Context, id string, o ExecOptions) (int, error) {
	created, err := c.api.ContainerExecCreate(ctx, id, container.ExecOptions{
		Cmd: o.Cmd, Env: o.Env, User: o.User,
		AttachStdin: o.Stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return -1, fmt.Errorf("exec %s in %s: %w", first(o.Cmd), short(id), err)
	}
	att, err := c.api.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, fmt.Errorf("exec %s in %s: %w", first(o.Cmd), short(id), err)
	}
	defer att.Close()
	stdinErr := make(chan error, 1)
	if o.Stdin != nil {
		go func() {
			_, err := io.Copy(att.Conn, o.Stdin)
			if cerr := att.CloseWrite(); err == nil {
				err = cerr
			}
			stdinErr <- err
		}()
	} else {
		stdinErr <- nil
	}
	stdout, stderr := o.Stdout, o.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if _, err := stdcopy.StdCopy(stdout, stderr, att.Reader); err != nil {
		return -1, fmt.Errorf("exec %s in %s: output: %w", first(o.Cmd), short(id), err)
	}
	// A command that stops reading early makes the input copy fail with a
	// broken pipe: when it failed, its exit code says more; when it
	// succeeded, it had read what it needed (pg_restore --list reads the
	// table of contents only).
	inErr := <-stdinErr
	if errors.Is(inErr, syscall.EPIPE) || errors.Is(inErr, syscall.ECONNRESET) {
		inErr = nil
	}
	insp, err := c.api.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return -1, fmt.Errorf("exec %s in %s: %w", first(o.Cmd), short(id), err)
	}
	if insp.ExitCode == 0 && inErr != nil {
		return -1, fmt.Errorf("exec %s in %s: input: %w", first(o.Cmd), short(id), inErr)
	}
	return insp.ExitCode, nil
}

func first(cmd []string) string {
	if len(cmd) == 0 {
		return ""
	}
	return cmd[0]
}

// CopyOut returns the engine's tar stream of path inside the container
// (running or not, through its mounts). Entries keep their numeric owners,
// modes and times; the stream's entries are rooted at path's base name.
// The caller closes it.
func (c *Client) CopyOut(ctx context.Context, id, p string) (io.ReadCloser, error) {
	rc, _, err := c.api.CopyFromContainer(ctx, id, p)
	if err != nil {
		return nil, fmt.Errorf("copy %s out of %s: %w", p, short(id), err)
	}
	return rc, nil
}

// CopyInOwned writes the tar stream r into dir inside the container like
// CopyIn, but keeps the numeric owners the archive records: PostgreSQL
// refuses a data directory that is not its own (#3739).
func (c *Client) CopyInOwned(ctx context.Context, id, dir string, r io.Reader) error {
	if err := c.api.CopyToContainer(ctx, id, dir, r, container.CopyToContainerOptions{CopyUIDGID: true}); err != nil {
		return fmt.Errorf("copy into %s:%s: %w", short(id), dir, err)
	}
	return nil
}

// Owner returns the numeric owner of the file at p inside the container
// (running or not), as the engine's archive of it records.
func (c *Client) Owner(ctx context.Context, id, p string) (uid, gid int, err error) {
	rc, _, err := c.api.CopyFromContainer(ctx, id, p)
	if err != nil {
		return 0, 0, fmt.Errorf("owner of %s in %s: %w", p, short(id), err)
	}
	defer rc.Close()
	hdr, err := tar.NewReader(rc).Next()
	if errors.Is(err, io.EOF) {
		return 0, 0, fmt.Errorf("owner of %s in %s: empty archive", p, short(id))
	}
	if err != nil {
		return 0, 0, fmt.Errorf("owner of %s in %s: %w", p, short(id), err)
	}
	return hdr.Uid, hdr.Gid, nil
}
