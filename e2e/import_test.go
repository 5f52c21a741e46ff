package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"
)

// startByHand starts d's container the way GPUStack's documentation does,
// without gpustack-deploy: one named volume at /var/lib/gpustack (the model
// cache inside it), the bootstrap password in the environment, the port
// published on 127.0.0.1, plus extra published ports.
func (d *deployment) startByHand(password string, extraPorts ...int) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exposed := nat.PortSet{"80/tcp": {}}
	bindings := nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(d.port)}}}
	for _, p := range extraPorts {
		cport := nat.Port(strconv.Itoa(p) + "/tcp")
		exposed[cport] = struct{}{}
		bindings[cport] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: strconv.Itoa(freePort(d.t))}}
	}
	created, err := docker.ContainerCreate(ctx,
		&container.Config{
			Image:        repository + ":v0.5.1-cpu",
			Cmd:          []string{"--disable-worker"},
			Env:          []string{"GPUSTACK_BOOTSTRAP_PASSWORD=" + password},
			ExposedPorts: exposed,
		},
		&container.HostConfig{
			PortBindings: bindings,
			Mounts:       []mount.Mount{{Type: mount.TypeVolume, Source: d.data, Target: "/var/lib/gpustack"}},
		}, nil, nil, d.container)
	if err != nil {
		d.t.Fatalf("create %s by hand: %v", d.container, err)
	}
	if err := docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		d.t.Fatalf("start %s: %v", d.container, err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if d.healthzQuiet() {
			return created.ID
		}
	}
	d.t.Fatalf("%s made by hand never answered /healthz", d.container)
	return ""
}

// healthzQuiet reports whether /healthz answers 200 on the published port.
func (d *deployment) healthzQuiet() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(d.port) + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// adoptionPath is where import records that the deployment owns its container.
func (d *deployment) adoptionPath() string {
	return filepath.Join(d.state, "adopted", d.name+".json")
}

func TestImportAdoptsAContainerMadeByHand(t *testing.T) {
	needToolbox(t)
	t.Parallel()
	d := newDeployment(t, "import", options{version: "v0.5.1"})
	secret := "pw-" + randomHex(12)
	id := d.startByHand(secret)
	out := filepath.Join(d.dir, "imported.hcl")

	r := d.run("import", "--container", d.container, "--name", d.name, "-o", out)
	expectCode(t, r, 0)
	expectOutput(t, r, "Wrote "+out, "GPUSTACK_DEPLOY_VAR_gpustack_bootstrap_password=", "Adopted: deployment \""+d.name+"\"",
		"the model cache is inside the data volume")
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	adoption, err := os.ReadFile(d.adoptionPath())
	if err != nil {
		t.Fatalf("no adoption recorded: %v", err)
	}
	if !strings.Contains(string(adoption), id) {
		t.Errorf("the adoption names another container than %s:\n%s", id, adoption)
	}
	for what, text := range map[string]string{"file": string(file), "output": r.output(), "adoption": string(adoption)} {
		if strings.Contains(text, secret) {
			t.Errorf("the secret appears in import's %s:\n%s", what, text)
		}
	}
	for _, want := range []string{`version        = "v0.5.1"`, `variant        = "cpu"`, `port           = ` + strconv.Itoa(d.port),
		`GPUSTACK_BOOTSTRAP_PASSWORD = var.gpustack_bootstrap_password`, `name = "` + d.data + `"`, `name = "` + d.data + `-cache"`} {
		if !strings.Contains(string(file), want) {
			t.Errorf("the file lacks %q:\n%s", want, file)
		}
	}

	// The file is not overwritten by accident.
	r = d.run("import", "--container", d.container, "--name", d.name, "-o", out)
	expectCode(t, r, 1)
	expectOutput(t, r, "exists")

	// With the secret supplied, the file loads and the plan changes
	// nothing but moving the model cache out of the data volume.
	d.env = []string{"GPUSTACK_DEPLOY_VAR_gpustack_bootstrap_password=" + secret}
	expectCode(t, d.run("validate", "-f", out), 0)
	r = d.run("plan", "-f", out, "--json")
	expectCode(t, r, 0)
	if strings.Contains(r.output(), secret) {
		t.Errorf("the plan shows the secret:\n%s", r.output())
	}
	expectOnlyCacheSplit(t, r.stdout, d.data+"-cache")
}

// expectOnlyCacheSplit checks a plan --json: nothing refused, and every
// action belongs to moving the cache into its own volume.
func expectOnlyCacheSplit(t testing.TB, planJSON, cacheVolume string) {
	t.Helper()
	var p struct {
		Deployments []struct {
			Refusals []struct{ Summary string } `json:"refusals"`
			Actions  []struct {
				Kind, Reason, Subject, Detail string
			} `json:"actions"`
		} `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(planJSON), &p); err != nil || len(p.Deployments) != 1 {
		t.Fatalf("plan --json: %v\n%s", err, planJSON)
	}
	pd := p.Deployments[0]
	if len(pd.Refusals) > 0 {
		t.Errorf("the plan is refused: %+v", pd.Refusals)
	}
	for _, a := range pd.Actions {
		switch a.Kind {
		case "create-volume":
			if a.Subject != cacheVolume {
				t.Errorf("the plan creates volume %s, want only the cache volume %s", a.Subject, cacheVolume)
			}
		case "replace-container":
			// The split mounts the cache volume and, for v0.x, passes
			// its path as --cache-dir: nothing else may differ.
			for _, what := range strings.Split(a.Detail, ", ") {
				if what != "args" && what != "volumes" {
					t.Errorf("the container is replaced because of %q, not only the cache (%s: %s)", what, a.Reason, a.Detail)
				}
			}
		case "copy-cache", "remove-old-cache", "verify", "remove-previous":
		default:
			t.Errorf("the plan has %s %s (%s), which the cache split does not need", a.Kind, a.Subject, a.Reason)
		}
	}
}

// TestImportListsWhatAFileCannotSay: an extra published port is listed in
// the output and the file, and the container is not adopted.
func TestImportListsWhatAFileCannotSay(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "import-port", options{version: "v0.5.1"})
	d.startByHand("pw-"+randomHex(12), 10150)
	out := filepath.Join(d.dir, "imported.hcl")

	r := d.run("import", "--container", d.container, "--name", d.name, "-o", out)
	expectCode(t, r, 0)
	expectOutput(t, r, "Not adopted", "published port 127.0.0.1:", "-> 10150/tcp")
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(file), "-> 10150/tcp") {
		t.Errorf("the file does not mention the extra port:\n%s", file)
	}
	if _, err := os.Stat(d.adoptionPath()); err == nil {
		t.Error("an adoption was recorded for a container the file cannot describe")
	}
	if _, err := docker.ContainerInspect(context.Background(), d.container); cerrdefs.IsNotFound(err) {
		t.Error("import removed the container")
	}
}
