package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/client"
)

// Target is where a named host's engine is and how to reach it.
type Target struct {
	// Endpoint is unix:///path, tcp://host:port or ssh://[user@]host[:port];
	// empty means the environment (DOCKER_HOST and friends).
	Endpoint string
	// CAFile, CertFile and KeyFile are the TLS files of a tcp:// endpoint.
	CAFile, CertFile, KeyFile string
}

// SSHCommand is the program the ssh:// dialer runs; tests point it at a
// stand-in.
var SSHCommand = "ssh"

// sshConnectTimeout bounds ssh's own connection attempt, as the docker CLI's.
const sshConnectTimeout = 30

// DialTarget connects to the engine of the host named host at t.
func DialTarget(ctx context.Context, host string, t Target) (*Client, error) {
	opts, display, err := clientOptions(t)
	if err != nil {
		return nil, fmt.Errorf("docker host %s (%s): %w", host, display, err)
	}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker host %s (%s): %w", host, display, err)
	}
	if display == "" {
		display = api.DaemonHost()
	}
	c := &Client{Host: host, Endpoint: display, api: api}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := api.Ping(pingCtx); err != nil {
		api.Close()
		return nil, fmt.Errorf("docker host %s (%s) does not answer: %w", host, c.Endpoint, err)
	}
	api.NegotiateAPIVersion(ctx)
	return c, nil
}

// clientOptions builds the docker client's options for t; display is the
// address printed in messages (never a key).
func clientOptions(t Target) (opts []client.Opt, display string, err error) {
	if t.Endpoint == "" {
		return []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}, "", nil
	}
	u, err := url.Parse(t.Endpoint)
	if err != nil {
		return nil, t.Endpoint, fmt.Errorf("invalid address: %w", err)
	}
	tls := t.CAFile != "" || t.CertFile != "" || t.KeyFile != ""
	if tls && u.Scheme != "tcp" {
		return nil, t.Endpoint, errors.New("TLS files apply to tcp:// addresses only")
	}
	opts = []client.Opt{client.WithAPIVersionNegotiation()}
	switch u.Scheme {
	case "unix", "tcp":
		opts = append(opts, client.WithHost(t.Endpoint))
		if tls {
			opts = append(opts, client.WithTLSClientConfig(t.CAFile, t.CertFile, t.KeyFile))
		}
	case "ssh":
		args, err := SSHArgs(t.Endpoint)
		if err != nil {
			return nil, t.Endpoint, err
		}
		dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialCommand(ctx, SSHCommand, args)
		}
		// The host part is a placeholder: every connection is a new ssh.
		opts = append(opts, client.WithHost("http://docker.example.com"), client.WithDialContext(dial))
	default:
		return nil, t.Endpoint, fmt.Errorf("scheme %q is not supported; use unix://, tcp:// or ssh://", u.Scheme)
	}
	return opts, t.Endpoint, nil
}

// SSHArgs are the arguments of the ssh command that reaches the engine at
// an ssh:// address, as the docker CLI builds them:
// -o ConnectTimeout=30 -T [-l USER] [-p PORT] -- HOST docker system dial-stdio.
func SSHArgs(endpoint string) ([]string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("invalid address: %w", err)
	}
	if u.Scheme != "ssh" {
		return nil, fmt.Errorf("%s is not an ssh:// address", endpoint)
	}
	if _, set := u.User.Password(); set {
		return nil, errors.New("an ssh:// address cannot carry a password")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, errors.New("an ssh:// address takes no path or query")
	}
	host := u.Hostname()
	if host == "" || strings.HasPrefix(host, "-") {
		return nil, errors.New("an ssh:// address names a host")
	}
	args := []string{"-o", fmt.Sprintf("ConnectTimeout=%d", sshConnectTimeout), "-T"}
	if u.User != nil {
		user := u.User.Username()
		if user == "" || strings.HasPrefix(user, "-") {
			return nil, errors.New("invalid ssh user")
		}
		args = append(args, "-l", user)
	}
	if p := u.Port(); p != "" {
		args = append(args, "-p", p)
	}
	return append(args, "--", host, "docker", "system", "dial-stdio"), nil
}

// commandConn is a net.Conn over a command's standard input and output.
type commandConn struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *stderrBuffer
	once   sync.Once
	name   string
	// exited is closed once the command has exited and its error output
	// has been copied in full.
	exited   chan struct{}
	waitOnce sync.Once
}

// wait reaps the command once; its error output is complete afterwards.
func (c *commandConn) wait() {
	c.waitOnce.Do(func() {
		go func() {
			_ = c.cmd.Wait()
			close(c.exited)
		}()
	})
}

// dialCommand starts name with args; its stdin and stdout are the connection.
// The command outlives ctx (the connection is closed by the client).
func dialCommand(ctx context.Context, name string, args []string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &commandConn{cmd: cmd, stdin: stdin, stdout: stdout, stderr: &stderrBuffer{max: 4096}, name: name, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return c, nil
}

func (c *commandConn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	if err == io.EOF {
		// The command closed its output: it is ending. Its error output
		// is copied by another goroutine; give it a moment to finish.
		c.wait()
		select {
		case <-c.exited:
		case <-time.After(2 * time.Second):
		}
		if msg := c.stderr.String(); msg != "" {
			return n, fmt.Errorf("%s: %s: %w", c.name, msg, io.ErrUnexpectedEOF)
		}
	}
	return n, err
}

func (c *commandConn) Write(p []byte) (int, error) {
	n, err := c.stdin.Write(p)
	if err != nil {
		c.wait()
		select {
		case <-c.exited:
		case <-time.After(2 * time.Second):
		}
		if msg := c.stderr.String(); msg != "" {
			return n, fmt.Errorf("%s: %s: %w", c.name, msg, err)
		}
	}
	return n, err
}

// CloseWrite closes the command's input; the docker client calls it after
// sending a hijacked stream's input.
func (c *commandConn) CloseWrite() error { return c.stdin.Close() }

// CloseRead is a no-op: the output is closed with the connection.
func (c *commandConn) CloseRead() error { return nil }

func (c *commandConn) Close() error {
	c.once.Do(func() {
		c.stdin.Close()
		if c.cmd.Process != nil {
			_ = c.cmd.Process.Kill()
		}
		c.wait()
		<-c.exited
	})
	return nil
}

func (c *commandConn) LocalAddr() net.Addr  { return dummyAddr{} }
func (c *commandConn) RemoteAddr() net.Addr { return dummyAddr{} }

// Deadlines are not supported on pipes to a process; the HTTP client's
// context cancellation closes the connection instead.
func (c *commandConn) SetDeadline(time.Time) error      { return nil }
func (c *commandConn) SetReadDeadline(time.Time) error  { return nil }
func (c *commandConn) SetWriteDeadline(time.Time) error { return nil }

type dummyAddr struct{}

func (dummyAddr) Network() string { return "command" }
func (dummyAddr) String() string  { return "command" }

// stderrBuffer keeps the first max bytes of a command's error output.
type stderrBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *stderrBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *stderrBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
