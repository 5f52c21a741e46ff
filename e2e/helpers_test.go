package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"
)

// deployment is one test's deployment: its directory and its names.
type deployment struct {
	t         testing.TB
	name      string
	container string
	data      string
	cache     string
	port      int
	dir       string // holds the HCL file, backups/ and state/
	file      string
	state     string
	backups   string   // <dir>/backups/<name>
	env       []string // added to the environment of every run
}

// options shape the HCL file of a deployment.
type options struct {
	version   string // the default of var.version
	variables string // extra top-level HCL, such as variable blocks
	body      string // extra attributes inside the gpustack block
	health    string // health.timeout; "60s" when empty
	policy    string // extra attributes inside the policy block
	noCache   bool   // declare no cache volume: the cache stays in the data volume
	variant   string // "cpu" when empty; "none" writes no variant (v2 images have none)
	args      string // the args list; ["--disable-worker"] when empty
	backup    string // extra attributes inside the backup block
}

// newDeployment writes a deployment's HCL file with unique names and
// registers the removal of everything it may create on the engine.
func newDeployment(t testing.TB, prefix string, o options) *deployment {
	t.Helper()
	if noEngine != "" {
		t.Skip(noEngine)
	}
	name := "e2e-" + prefix + "-" + randomHex(4)
	dir := t.TempDir()
	d := &deployment{
		t: t, name: name, container: "gsd-" + name, data: name + "-data", cache: name + "-cache",
		port: freePort(t), dir: dir, file: filepath.Join(dir, "gpustack.hcl"), state: filepath.Join(dir, "state"),
		backups: filepath.Join(dir, "backups", name),
	}
	t.Cleanup(d.remove)
	d.write(o)
	return d
}

// write (re)writes the deployment's HCL file.
func (d *deployment) write(o options) {
	d.t.Helper()
	if o.health == "" {
		o.health = "60s"
	}
	variant := `variant        = "cpu"`
	switch o.variant {
	case "":
	case "none":
		variant = "# v2 images have no variant"
	default:
		variant = fmt.Sprintf("variant        = %q", o.variant)
	}
	if o.args == "" {
		o.args = `["--disable-worker"]`
	}
	cache := fmt.Sprintf("volume \"cache\" { name = %q }", d.cache)
	if o.noCache {
		cache = "# no cache volume: the model cache lives in the data volume"
	}
	hcl := fmt.Sprintf(`variable "version" { default = %q }
%s
gpustack %q {
  version        = var.version
  %s
  container_name = %q
  port           = %d
  listen_address = "127.0.0.1"
  args           = %s
%s
  volume "data" { name = %q }
  %s
  backup {
    dir = "./backups"
    %s
  }
  policy { # the images are built by TestMain; no registry
    pull = "never"
    %s
  }
  health { timeout = %q }
}
`, o.version, o.variables, d.name, variant, d.container, d.port, o.args, o.body, d.data, cache, o.backup, o.policy, o.health)
	if err := os.WriteFile(d.file, []byte(hcl), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// remove deletes the deployment's containers (kept-aside and helper ones
// included) and volumes.
func (d *deployment) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := map[string]string{}
	for _, name := range []string{d.container, d.container + previousSuffix} {
		if ct, err := docker.ContainerInspect(ctx, name); err == nil {
			ids[ct.ID] = name
		}
	}
	owned, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", labelDeployment+"="+d.name))})
	if err != nil {
		d.t.Errorf("cleanup: list containers of %s: %v", d.name, err)
	}
	for _, ct := range owned {
		ids[ct.ID] = strings.Join(ct.Names, ",")
	}
	for id, name := range ids {
		if err := docker.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			d.t.Errorf("cleanup: remove container %s: %v", name, err)
		}
	}
	// <data>-cache is the cache volume import declares for a container made
	// by hand; it is removed here, after the containers that use it.
	for _, v := range []string{d.data, d.cache, d.data + "-cache"} {
		if err := docker.VolumeRemove(ctx, v, true); err != nil && !cerrdefs.IsNotFound(err) {
			d.t.Errorf("cleanup: remove volume %s: %v", v, err)
		}
	}
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) output() string { return r.stdout + r.stderr }

// gsd runs `gpustack-deploy <command> -f <file> --state-dir <state> args…`.
func (d *deployment) gsd(command string, args ...string) result {
	d.t.Helper()
	return d.run(append([]string{command, "-f", d.file}, args...)...)
}

// run runs the binary with args and --state-dir, in the deployment's directory.
func (d *deployment) run(args ...string) result {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := d.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var exitErr *exec.ExitError
	if err := cmd.Run(); err != nil && !errors.As(err, &exitErr) {
		d.t.Fatalf("run gpustack-deploy %s: %v", strings.Join(args, " "), err)
	}
	res := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	d.t.Logf("$ gpustack-deploy %s\nexit %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	return res
}

// command prepares a run; the environment holds no GPUSTACK_DEPLOY_VAR_
// values but the deployment's own.
func (d *deployment) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binary, append(args, "--state-dir", d.state)...)
	cmd.Dir = d.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GPUSTACK_DEPLOY_VAR_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "NO_COLOR=1"), d.env...)
	return cmd
}

// expectCode fails the test now when a run did not exit with want.
func expectCode(t testing.TB, r result, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("exit code %d, want %d; output:\n%s", r.code, want, r.output())
	}
}

// expectOutput checks that each fragment appears in the output, with runs
// of white space (the renderer folds long lines) compared as one space.
func expectOutput(t testing.TB, r result, fragments ...string) {
	t.Helper()
	out := flat(r.output())
	for _, f := range fragments {
		if !strings.Contains(out, flat(f)) {
			t.Errorf("output lacks %q; output:\n%s", f, r.output())
		}
	}
}

func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

// inspect returns the named container, or nil when there is none.
func inspect(t testing.TB, name string) *container.InspectResponse {
	t.Helper()
	ct, err := docker.ContainerInspect(context.Background(), name)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("inspect container %s: %v", name, err)
	}
	return &ct
}

// mustInspect returns the deployment's container or fails the test.
func (d *deployment) mustInspect() *container.InspectResponse {
	d.t.Helper()
	ct := inspect(d.t, d.container)
	if ct == nil {
		d.t.Fatalf("container %s does not exist", d.container)
	}
	return ct
}

// execIn runs cmd in a running container and returns its standard output.
func execIn(t testing.TB, name string, cmd ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := docker.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, name, err)
	}
	att, err := docker.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, name, err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, name, err)
	}
	info, err := docker.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, name, err)
	}
	if info.ExitCode != 0 {
		t.Fatalf("exec %v in %s: exit %d\n%s%s", cmd, name, info.ExitCode, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// rows counts the rows of every table, read inside the running container.
func (d *deployment) rows() map[string]int64 {
	d.t.Helper()
	return decodeRows(d.t, execIn(d.t, d.container, "gpustack", "emulator", "rows"))
}

// seed inserts rows through the emulator and returns the counts after it.
func (d *deployment) seed(args ...string) map[string]int64 {
	d.t.Helper()
	return decodeRows(d.t, execIn(d.t, d.container, append([]string{"gpustack", "emulator", "seed"}, args...)...))
}

func decodeRows(t testing.TB, out string) map[string]int64 {
	t.Helper()
	counts := map[string]int64{}
	if err := json.Unmarshal([]byte(out), &counts); err != nil {
		t.Fatalf("row counts %q: %v", out, err)
	}
	return counts
}

// expectRowsKept checks that every table of before still holds its rows.
func expectRowsKept(t testing.TB, before, after map[string]int64) {
	t.Helper()
	for table, n := range before {
		if after[table] != n {
			t.Errorf("table %s: %d rows, want %d as before", table, after[table], n)
		}
	}
}

// healthz returns the status code of GET /healthz on the published port.
func (d *deployment) healthz() int {
	d.t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", d.port))
	if err != nil {
		d.t.Errorf("GET /healthz: %v", err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// statusRow is the part of `status --json` the suite reads.
type statusRow struct {
	Name      string `json:"name"`
	Container string `json:"container"`
	State     string `json:"state"`
	Version   string `json:"version"`
	Health    string `json:"health"`
	Revision  string `json:"revision"`
}

// status runs `status --json` and returns the deployment's row.
func (d *deployment) status() statusRow {
	d.t.Helper()
	r := d.gsd("status", "--json")
	expectCode(d.t, r, 0)
	var rows []statusRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		d.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if len(rows) != 1 || rows[0].Name != d.name {
		d.t.Fatalf("status --json: want one row for %s, got %+v", d.name, rows)
	}
	return rows[0]
}

// expectRunning checks that the deployment runs tag, healthy, with its
// database at revision and no container kept aside.
func (d *deployment) expectRunning(tag, revision string) *container.InspectResponse {
	d.t.Helper()
	ct := d.mustInspect()
	ref := repository + ":" + tag
	if !ct.State.Running {
		d.t.Errorf("container %s is %s, want running", d.container, ct.State.Status)
	}
	if ct.Config.Image != ref {
		d.t.Errorf("container %s runs %s, want %s", d.container, ct.Config.Image, ref)
	}
	img, err := docker.ImageInspect(context.Background(), ref)
	if err != nil {
		d.t.Fatalf("inspect image %s: %v", ref, err)
	}
	if ct.Image != img.ID {
		d.t.Errorf("container %s runs image %s, want %s (%s)", d.container, ct.Image, img.ID, ref)
	}
	for k, want := range map[string]string{labelDeployment: d.name, labelVersion: tag} {
		if got := ct.Config.Labels[k]; got != want {
			d.t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if ct.Config.Labels[labelConfigHash] == "" {
		d.t.Errorf("label %s is missing", labelConfigHash)
	}
	if prev := inspect(d.t, d.container+previousSuffix); prev != nil {
		d.t.Errorf("container %s is left over (%s)", prev.Name, prev.State.Status)
	}
	if code := d.healthz(); code != http.StatusOK {
		d.t.Errorf("GET /healthz on 127.0.0.1:%d: %d, want 200", d.port, code)
	}
	st := d.status()
	if st.Revision != revision || st.Version != tag || st.State != "running" {
		d.t.Errorf("status: %+v, want version %s, revision %s, running", st, tag, revision)
	}
	return ct
}

// manifest is the part of a backup's manifest.json the suite reads.
type manifest struct {
	ID         string           `json:"id"`
	Deployment string           `json:"deployment"`
	Version    string           `json:"version"`
	Revision   string           `json:"revision"`
	Rows       map[string]int64 `json:"rows"`
	Verified   bool             `json:"verified"`
}

// backupList reads the manifests of the backup directories on disk,
// oldest first.
func (d *deployment) backupList() []manifest {
	d.t.Helper()
	entries, err := os.ReadDir(d.backups)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		d.t.Fatal(err)
	}
	var out []manifest
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.backups, e.Name(), "manifest.json"))
		if err != nil {
			d.t.Fatalf("backup %s: %v", e.Name(), err)
		}
		var m manifest
		if err := json.Unmarshal(b, &m); err != nil {
			d.t.Fatalf("backup %s: manifest.json: %v", e.Name(), err)
		}
		if m.ID != e.Name() {
			d.t.Errorf("backup directory %s holds the manifest of %q", e.Name(), m.ID)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// expectUnchanged checks that the container is still the one in before,
// in the same state, started at the same time.
func (d *deployment) expectUnchanged(before *container.InspectResponse) {
	d.t.Helper()
	now := d.mustInspect()
	if now.ID != before.ID || now.Image != before.Image || now.State.Status != before.State.Status || now.State.StartedAt != before.State.StartedAt {
		d.t.Errorf("container %s changed: was %.12s %s %s started %s, now %.12s %s %s started %s", d.container,
			before.ID, before.Config.Image, before.State.Status, before.State.StartedAt,
			now.ID, now.Config.Image, now.State.Status, now.State.StartedAt)
	}
	if prev := inspect(d.t, d.container+previousSuffix); prev != nil {
		d.t.Errorf("container %s appeared", prev.Name)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
