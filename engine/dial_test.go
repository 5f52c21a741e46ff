package engine

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestSSHArgs(t *testing.T) {
	cases := []struct {
		in   string
		want string
		err  string
	}{
		{in: "ssh://gpu1", want: "-o ConnectTimeout=30 -T -- gpu1 docker system dial-stdio"},
		{in: "ssh://admin@gpu1:2222", want: "-o ConnectTimeout=30 -T -l admin -p 2222 -- gpu1 docker system dial-stdio"},
		{in: "ssh://admin@[::1]:22", want: "-o ConnectTimeout=30 -T -l admin -p 22 -- ::1 docker system dial-stdio"},
		{in: "ssh://admin:pw@gpu1", err: "password"},
		{in: "ssh://-oProxyCommand=x", err: "names a host"},
		{in: "ssh://-x@gpu1", err: "invalid ssh user"},
		{in: "ssh://gpu1/var/run", err: "no path"},
		{in: "tcp://gpu1:2376", err: "not an ssh://"},
	}
	for _, c := range cases {
		got, err := SSHArgs(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("SSHArgs(%q) = %q, %v; want error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("SSHArgs(%q) = %q, %v; want %q", c.in, strings.Join(got, " "), err, c.want)
		}
	}
}

func TestClientOptions(t *testing.T) {
	for _, c := range []struct {
		t   Target
		err string
	}{
		{t: Target{Endpoint: "unix:///var/run/docker.sock"}},
		{t: Target{Endpoint: "tcp://gpu1:2376"}},
		{t: Target{Endpoint: "ssh://admin@gpu1"}},
		{t: Target{Endpoint: "ftp://gpu1"}, err: "not supported"},
		{t: Target{Endpoint: "ssh://gpu1", CAFile: "/ca.pem"}, err: "tcp:// addresses only"},
		{t: Target{Endpoint: "ssh://a:b@gpu1"}, err: "password"},
	} {
		_, display, err := clientOptions(c.t)
		if display != c.t.Endpoint {
			t.Errorf("%+v: display %q", c.t, display)
		}
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%+v: err %v, want %q", c.t, err, c.err)
		}
	}
}

// TestDialTargetErrors: an unreachable engine and bad TLS files are errors
// naming the host and its address, never the key's content.
func TestDialTargetErrors(t *testing.T) {
	ctx := context.Background()
	_, err := DialTarget(ctx, "ghost", Target{Endpoint: "unix:///nonexistent/docker.sock"})
	if err == nil || !strings.Contains(err.Error(), "docker host ghost (unix:///nonexistent/docker.sock)") {
		t.Errorf("unreachable socket: %v", err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	secret := "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"
	if err := os.WriteFile(key, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = DialTarget(ctx, "gpu1", Target{Endpoint: "tcp://127.0.0.1:1", CAFile: key, CertFile: key, KeyFile: key})
	if err == nil || !strings.Contains(err.Error(), "docker host gpu1 (tcp://127.0.0.1:1)") || strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("bad TLS files: %v", err)
	}
}

// fakeSSH puts a script named ssh first on PATH that records its arguments
// and runs the local docker CLI's dial-stdio, standing in for the remote.
func fakeSSH(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"$@\" >> " + filepath.Join(dir, "args") + "\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(dir, "ssh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func TestDialSSH(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI")
	}
	if err := exec.Command("docker", "version").Run(); err != nil {
		t.Skip("no Docker engine")
	}
	dir := fakeSSH(t, "exec docker system dial-stdio")
	ctx := context.Background()
	c, err := DialTarget(ctx, "remote", Target{Endpoint: "ssh://admin@gpu1:2222"})
	if err != nil {
		t.Fatalf("dial through fake ssh: %v", err)
	}
	defer c.Close()
	if c.Host != "remote" || c.Endpoint != "ssh://admin@gpu1:2222" || c.IsLocal() {
		t.Errorf("client %q %q local=%t", c.Host, c.Endpoint, c.IsLocal())
	}
	// A real call, not only the ping: list containers through the tunnel.
	if _, err := c.API().ContainerList(ctx, container.ListOptions{All: true}); err != nil {
		t.Fatalf("container list through fake ssh: %v", err)
	}
	args, err := os.ReadFile(filepath.Join(dir, "args"))
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(args), "\n", 2)[0]
	if want := "-o ConnectTimeout=30 -T -l admin -p 2222 -- gpu1 docker system dial-stdio"; first != want {
		t.Errorf("ssh ran with %q, want %q", first, want)
	}
}

func TestDialSSHFailure(t *testing.T) {
	fakeSSH(t, "echo 'ssh: connect to host gpu9 port 22: Connection refused' >&2; exit 255")
	_, err := DialTarget(context.Background(), "gpu9", Target{Endpoint: "ssh://gpu9"})
	if err == nil {
		t.Fatal("dial through a failing ssh succeeded")
	}
	for _, want := range []string{"docker host gpu9 (ssh://gpu9)", "Connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestCommandConnArgs(t *testing.T) {
	c, err := dialCommand(context.Background(), "cat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil || !reflect.DeepEqual(buf, []byte("ping")) {
		t.Errorf("echo through cat: %q %v", buf, err)
	}
}
