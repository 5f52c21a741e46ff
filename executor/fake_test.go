package executor

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

var _ Engine = (*fakeEngine)(nil)

// behavior scripts what a container of one image does once started.
type behavior struct {
	// logs are the lines the process writes as it starts.
	logs []string
	// exit, when set, ends the process with this code after exitAfter.
	exit      *int64
	exitAfter time.Duration
	// healthy makes /healthz answer 200 while the container runs.
	healthy bool
	// version is what /version reports.
	version string
	// onStart runs when the container starts, with the local directory
	// behind its data volume: GPUStack's migration, for instance.
	onStart func(dataDir string)
}

// logLine is one line of a container's output and when it was written.
type logLine struct {
	at   time.Time
	text string
}

type fakeContainer struct {
	ct   engine.Container
	run  behavior
	logs []logLine
	// exited is closed when the current run ends.
	exited chan struct{}
}

// fakeEngine is an Engine on one Docker host, in memory. Named volumes are
// local directories, so the executor's file copies reach real SQLite files.
// It records every call that changes something (and Logs and CopyIn) in
// calls, and serves /healthz and /version for the running container.
type fakeEngine struct {
	t *testing.T

	mu         sync.Mutex
	calls      []string
	containers map[string]*fakeContainer // by ID
	volumes    map[string]string         // volume name -> local directory
	images     map[string]*engine.Image
	// behaviors are keyed by image reference.
	behaviors map[string]behavior
	nextID    int
	// copiedIn lists the tar entries CopyIn wrote, per call.
	copiedIn [][]string
	// removeErr, when set, makes RemoveContainer of that ID fail.
	removeErr map[string]error

	server *httptest.Server
}

func newFakeEngine(t *testing.T) *fakeEngine {
	t.Helper()
	f := &fakeEngine{
		t:          t,
		containers: map[string]*fakeContainer{},
		volumes:    map[string]string{},
		images:     map[string]*engine.Image{},
		behaviors:  map[string]behavior{},
	}
	f.server = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.server.Close)
	return f
}

// port is the port the fake GPUStack answers on, on 127.0.0.1.
func (f *fakeEngine) port() int {
	_, p, err := net.SplitHostPort(strings.TrimPrefix(f.server.URL, "http://"))
	if err != nil {
		f.t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fakeEngine) serveHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	var serving *fakeContainer
	for _, c := range f.containers {
		if c.ct.State == "running" && c.run.healthy {
			serving = c
		}
	}
	var version string
	if serving != nil {
		version = serving.run.version
	}
	f.mu.Unlock()
	if serving == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	switch r.URL.Path {
	case "/healthz":
		fmt.Fprintln(w, "ok")
	case "/version":
		_ = json.NewEncoder(w).Encode(map[string]string{"version": version, "git_commit": "abc1234"})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeEngine) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// Calls returns the recorded calls so far.
func (f *fakeEngine) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func notFound(what string) error {
	return fmt.Errorf("%s: %w", what, cerrdefs.ErrNotFound)
}

// addVolume creates a named volume backed by a local directory.
func (f *fakeEngine) addVolume(name string) string {
	dir := filepath.Join(f.t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.volumes[name] = dir
	return dir
}

// addContainer adds an existing container built from s in the given state.
func (f *fakeEngine) addContainer(s spec.Container, state string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.create(s)
	f.containers[id].ct.State = state
	return id
}

func (f *fakeEngine) create(s spec.Container) string {
	f.nextID++
	id := "c" + strconv.Itoa(f.nextID)
	ct := engine.Container{
		ID: id, Name: s.Name, Image: s.Image, ImageID: "sha256:" + s.Image, State: "created",
		Labels: s.Labels, Args: s.ArgStrings(), Env: s.EnvStrings(), Restart: s.Restart,
		Ports: []engine.Port{{HostIP: s.Port.HostIP, HostPort: s.Port.HostPort, ContainerPort: s.Port.ContainerPort}},
	}
	for _, m := range s.Mounts {
		ct.Mounts = append(ct.Mounts, engine.Mount{Type: "volume", Name: m.Volume, Destination: m.Target})
	}
	f.containers[id] = &fakeContainer{ct: ct, exited: make(chan struct{})}
	return id
}

func (f *fakeEngine) byRef(ref string) *fakeContainer {
	if c, ok := f.containers[ref]; ok {
		return c
	}
	for _, c := range f.containers {
		if c.ct.Name == ref {
			return c
		}
	}
	return nil
}

func (f *fakeEngine) get(id string) (*fakeContainer, error) {
	c := f.byRef(id)
	if c == nil {
		return nil, notFound("container " + id)
	}
	return c, nil
}

// local maps a path inside container id to the local file behind its volume.
func (f *fakeEngine) local(id, p string) (string, error) {
	c, err := f.get(id)
	if err != nil {
		return "", err
	}
	for _, m := range c.ct.Mounts {
		if p == m.Destination || strings.HasPrefix(p, m.Destination+"/") {
			dir, ok := f.volumes[m.Name]
			if !ok {
				return "", fmt.Errorf("volume %s does not exist", m.Name)
			}
			return filepath.Join(dir, strings.TrimPrefix(p, m.Destination)), nil
		}
	}
	return "", fmt.Errorf("%s is not on a volume of %s", p, id)
}

func (f *fakeEngine) InspectContainer(_ context.Context, ref string) (*engine.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byRef(ref)
	if c == nil {
		return nil, nil
	}
	ct := c.ct
	return &ct, nil
}

func (f *fakeEngine) InspectImage(_ context.Context, ref string) (*engine.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images[ref], nil
}

func (f *fakeEngine) PullImage(_ context.Context, ref string, _ io.Writer, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("PullImage %s", ref)
	f.images[ref] = &engine.Image{ID: "sha256:" + ref}
	return nil
}

func (f *fakeEngine) CreateVolume(_ context.Context, name string, _ map[string]string) error {
	f.mu.Lock()
	f.record("CreateVolume %s", name)
	_, ok := f.volumes[name]
	f.mu.Unlock()
	if !ok {
		f.addVolume(name)
	}
	return nil
}

func (f *fakeEngine) CreateContainer(_ context.Context, s spec.Container) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("CreateContainer %s %s restart=%s", s.Name, s.Image, s.Restart)
	if f.byRef(s.Name) != nil {
		return "", fmt.Errorf("create container %s: the name is in use", s.Name)
	}
	return f.create(s), nil
}

func (f *fakeEngine) StartContainer(_ context.Context, id string) error {
	f.mu.Lock()
	f.record("StartContainer %s", id)
	c, err := f.get(id)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	run := f.behaviors[c.ct.Image]
	now := time.Now()
	c.run, c.ct.State, c.ct.StartedAt, c.exited = run, "running", now, make(chan struct{})
	for _, l := range run.logs {
		c.logs = append(c.logs, logLine{at: now, text: l})
	}
	exited := c.exited
	var data string
	if run.onStart != nil {
		data, err = f.local(id, spec.DataDir)
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if run.onStart != nil {
		run.onStart(data)
	}
	if run.exit != nil {
		go func() {
			time.Sleep(run.exitAfter)
			f.mu.Lock()
			defer f.mu.Unlock()
			if c.exited == exited && c.ct.State == "running" {
				c.ct.State, c.ct.ExitCode = "exited", int(*run.exit)
				close(exited)
			}
		}()
	}
	return nil
}

func (f *fakeEngine) StopContainer(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("StopContainer %s", id)
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if c.ct.State == "running" {
		c.ct.State, c.ct.ExitCode = "exited", 0
		close(c.exited)
	}
	return nil
}

func (f *fakeEngine) RemoveContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemoveContainer %s", id)
	if err := f.removeErr[id]; err != nil {
		return err
	}
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if c.ct.State == "running" {
		close(c.exited)
	}
	delete(f.containers, c.ct.ID)
	return nil
}

func (f *fakeEngine) RenameContainer(_ context.Context, id, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RenameContainer %s %s", id, name)
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if other := f.byRef(name); other != nil && other != c {
		return fmt.Errorf("rename %s: the name %s is in use", id, name)
	}
	c.ct.Name = name
	return nil
}

func (f *fakeEngine) SetRestartPolicy(_ context.Context, id, policy string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("SetRestartPolicy %s %s", id, policy)
	c, err := f.get(id)
	if err != nil {
		return err
	}
	c.ct.Restart = policy
	return nil
}

// FollowLogs sends the lines written since since, then those of the
// current run, and closes the channel when the run ends or ctx does.
func (f *fakeEngine) FollowLogs(ctx context.Context, id string, since time.Time) (<-chan string, error) {
	f.mu.Lock()
	c, err := f.get(id)
	if err != nil {
		f.mu.Unlock()
		return nil, err
	}
	var lines []string
	for _, l := range c.logs {
		// The engine's since has a resolution of one second.
		if !l.at.Before(since.Truncate(time.Second)) {
			lines = append(lines, l.text)
		}
	}
	exited := c.exited
	f.mu.Unlock()
	out := make(chan string)
	go func() {
		defer close(out)
		for _, l := range lines {
			select {
			case out <- l:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-exited:
		case <-ctx.Done():
		}
	}()
	return out, nil
}

func (f *fakeEngine) WaitExit(ctx context.Context, id string) (<-chan int64, <-chan error) {
	out := make(chan int64, 1)
	errc := make(chan error, 1)
	f.mu.Lock()
	c, err := f.get(id)
	f.mu.Unlock()
	if err != nil {
		errc <- err
		return out, errc
	}
	f.mu.Lock()
	exited := c.exited
	f.mu.Unlock()
	go func() {
		select {
		case <-exited:
			f.mu.Lock()
			code := int64(c.ct.ExitCode)
			f.mu.Unlock()
			out <- code
		case <-ctx.Done():
			errc <- fmt.Errorf("wait for container %s: %w", id, ctx.Err())
		}
	}()
	return out, errc
}

func (f *fakeEngine) Logs(_ context.Context, id string, _ string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Logs %s", id)
	c, err := f.get(id)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, l := range c.logs {
		b.WriteString(l.text + "\n")
	}
	return []byte(b.String()), nil
}

func (f *fakeEngine) Stat(_ context.Context, id, p string) (bool, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	local, err := f.local(id, p)
	if err != nil {
		return false, 0, err
	}
	st, err := os.Stat(local)
	if errors.Is(err, os.ErrNotExist) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	return true, st.Size(), nil
}

func (f *fakeEngine) CopyFile(_ context.Context, id, src, dst string) (int64, error) {
	f.mu.Lock()
	local, err := f.local(id, src)
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(local)
	if errors.Is(err, os.ErrNotExist) {
		return 0, notFound(src)
	}
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		return 0, err
	}
	return int64(len(b)), nil
}

func (f *fakeEngine) CopyIn(_ context.Context, id, dir string, r io.Reader) error {
	f.mu.Lock()
	f.record("CopyIn %s %s", id, dir)
	local, err := f.local(id, dir)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	tr := tar.NewReader(r)
	var names []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg || path.Base(hdr.Name) != hdr.Name {
			return fmt.Errorf("fake CopyIn: unexpected entry %q", hdr.Name)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(local, hdr.Name), b, 0o644); err != nil {
			return err
		}
		names = append(names, hdr.Name)
	}
	f.mu.Lock()
	f.copiedIn = append(f.copiedIn, names)
	f.mu.Unlock()
	return nil
}

// RemoveVolume records the call; the fake keeps volumes as directories and
// no test deletes one yet.
func (f *fakeEngine) RemoveVolume(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemoveVolume %s", name)
	return fmt.Errorf("fake engine: RemoveVolume is not emulated")
}

// RunTool records the call; scripts run only on a real engine (e2e).
func (f *fakeEngine) RunTool(_ context.Context, t engine.Tool) (engine.ToolResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RunTool %s", t.Image)
	return engine.ToolResult{}, fmt.Errorf("fake engine: RunTool is not emulated")
}

// ListByVolume returns the fake's containers that mount the volume.
func (f *fakeEngine) ListByVolume(_ context.Context, source string) ([]*engine.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListByVolume %s", source)
	var out []*engine.Container
	for _, c := range f.containers {
		for _, m := range c.ct.Mounts {
			if m.Name == source || m.Source == source {
				ct := c.ct
				out = append(out, &ct)
			}
		}
	}
	return out, nil
}

func (f *fakeEngine) ReadSmallFile(_ context.Context, id, p string, limit int64) ([]byte, error) {
	f.mu.Lock()
	local, err := f.local(id, p)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(local)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, limit)
	}
	return b, nil
}
