//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A network namespace of the test's own, and how the test reaches into it:
// gpustack-deploy run there (nsenter), HTTP from a thread that entered it.

// netns is a network namespace of the test's own (`ip netns add`), with
// its loopback up.
type netns struct{ name string }

// newNetns makes a namespace named prefix-<random>; t.Cleanup deletes it
// (after the cleanups registered later, such as the daemons in it).
func newNetns(t testing.TB, prefix string) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, fmt.Errorf("a network namespace of its own needs root (euid %d)", os.Geteuid()))
	}
	for _, tool := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, fmt.Errorf("a network namespace of its own needs %s: %v", tool, err))
		}
	}
	n := &netns{name: prefix + "-" + randomHex(4)}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		skipOrFail(t, fmt.Errorf("ip netns add %s: %v: %s", n.name, err, bytes.TrimSpace(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.name, err, bytes.TrimSpace(out))
		}
	})
	if out, err := exec.Command("ip", "-n", n.name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		skipOrFail(t, fmt.Errorf("ip -n %s link set lo up: %v: %s", n.name, err, bytes.TrimSpace(out)))
	}
	return n
}

func (n *netns) path() string { return "/run/netns/" + n.name }

// command is d.command run inside the namespace, where the deployments'
// ports are.
func (n *netns) command(d *deployment, ctx context.Context, args ...string) *exec.Cmd {
	cmd := d.command(ctx, args...)
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		d.t.Fatal(err)
	}
	cmd.Path = nsenter
	cmd.Args = append([]string{"nsenter", "--net=" + n.path(), "--"}, cmd.Args...)
	return cmd
}

// run is d.run inside the namespace.
func (n *netns) run(d *deployment, args ...string) result {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := n.command(d, ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var exitErr *exec.ExitError
	if err := cmd.Run(); err != nil && !errors.As(err, &exitErr) {
		d.t.Fatalf("run gpustack-deploy %s in netns %s: %v", strings.Join(args, " "), n.name, err)
	}
	res := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	d.t.Logf("$ gpustack-deploy %s (in netns %s)\nexit %d\n%s%s", strings.Join(args, " "), n.name, res.code, res.stdout, res.stderr)
	return res
}

// curl GETs url from inside the namespace and returns the status and the
// body; header items are "Name: value". It fails the test when no answer
// comes; see get.
func (n *netns) curl(t testing.TB, url string, header ...string) (int, []byte) {
	t.Helper()
	code, body, err := n.get(url, header...)
	if err != nil {
		t.Fatalf("GET %s in netns %s: %v", url, n.name, err)
	}
	return code, body
}

// get is one HTTP/1.1 GET of an http:// URL whose host is an IP address
// (or localhost), made from inside the namespace: a goroutine locks
// itself to its thread, moves the thread into the namespace (setns), and
// does the whole exchange there (dial, write, read; one request, no
// keep-alive). The socket belongs to the namespace it was created in, so
// the dial must happen on that thread; an http.Transport would dial on a
// goroutine of its own. The thread is never unlocked: when the goroutine
// ends, Go ends the thread with it, so no other goroutine ever runs in the
// namespace. The main thread is the exception (Go never ends it), so it
// is never the one that enters.
func (n *netns) get(rawURL string, header ...string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("request: %w", err)
	}
	if req.URL.Scheme != "http" {
		return 0, nil, fmt.Errorf("%s: only http:// URLs", rawURL)
	}
	for _, h := range header {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return 0, nil, fmt.Errorf("header %q: want \"Name: value\"", h)
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	req.Close = true
	host := req.URL.Hostname()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	// No name resolution: it would not happen on the namespace's thread.
	if net.ParseIP(host) == nil {
		return 0, nil, fmt.Errorf("%s: the host must be an IP address", rawURL)
	}
	port := req.URL.Port()
	if port == "" {
		port = "80"
	}
	addr := net.JoinHostPort(host, port)

	done := make(chan netnsAnswer, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread: Go cannot end it, and would keep it, wedged,
			// in the namespace. It is held (so nothing else runs on it)
			// while another thread does the request, then given back as it
			// was.
			held := make(chan struct{})
			go func() {
				defer close(held)
				runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
				done <- n.getHere(req, addr)
			}()
			<-held
			runtime.UnlockOSThread()
			return
		}
		// Never unlocked: the thread ends with the goroutine.
		done <- n.getHere(req, addr)
	}()
	a := <-done
	return a.code, a.body, a.err
}

type netnsAnswer struct {
	code int
	body []byte
	err  error
}

// getHere enters the namespace and does the request; it runs on a locked
// thread that is not the main thread.
func (n *netns) getHere(req *http.Request, addr string) netnsAnswer {
	f, err := os.Open(n.path())
	if err != nil {
		return netnsAnswer{err: fmt.Errorf("open netns: %w", err)}
	}
	err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
	f.Close()
	if err != nil {
		return netnsAnswer{err: fmt.Errorf("setns %s: %w", n.path(), err)}
	}
	deadline := time.Now().Add(10 * time.Second)
	// FallbackDelay < 0: one address, dialled here, never on another goroutine.
	dialer := net.Dialer{Deadline: deadline, FallbackDelay: -1}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		return netnsAnswer{err: fmt.Errorf("dial: %w", err)}
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return netnsAnswer{err: fmt.Errorf("deadline: %w", err)}
	}
	if err := req.Write(conn); err != nil {
		return netnsAnswer{err: fmt.Errorf("write request: %w", err)}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return netnsAnswer{err: fmt.Errorf("read answer: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return netnsAnswer{code: resp.StatusCode, body: body, err: fmt.Errorf("read body: %w", err)}
	}
	return netnsAnswer{code: resp.StatusCode, body: body}
}

// threadsIn lists the threads of this process that are in the namespace.
func (n *netns) threadsIn() ([]string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(n.path(), &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", n.path(), err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("threads: %w", err)
	}
	var in []string
	for _, task := range tasks {
		if link, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns", "net")); err == nil && link == want {
			in = append(in, task.Name())
		}
	}
	return in, nil
}
