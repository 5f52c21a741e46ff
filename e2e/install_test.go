package e2e

import (
	"context"
	"encoding/json"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

func TestFreshInstall(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "fresh", options{version: "v0.4.1"})

	r := d.gsd("validate")
	expectCode(t, r, 0)
	expectOutput(t, r, "The configuration is valid: 1 deployment(s).")

	r = d.gsd("plan", "--detailed-exitcode")
	expectCode(t, r, 2)
	expectOutput(t, r,
		"+ create volume "+d.data,
		"+ create volume "+d.cache,
		"+ create container "+d.container+" (none) -> v0.4.1-cpu",
		"create the schema at "+head041,
		"Plan: 2 create volume, 1 create container, 1 migrate database.")
	if ct := inspect(t, d.container); ct != nil {
		t.Fatalf("plan created container %s", d.container)
	}
	for _, v := range []string{d.data, d.cache} {
		if _, err := docker.VolumeInspect(context.Background(), v); !cerrdefs.IsNotFound(err) {
			t.Fatalf("plan created volume %s (inspect: %v)", v, err)
		}
	}

	r = d.gsd("apply", "--auto-approve")
	expectCode(t, r, 0)
	expectOutput(t, r, d.name+": applied and verified")

	d.expectRunning("v0.4.1-cpu", head041)
	for v, role := range map[string]string{d.data: "data", d.cache: "cache"} {
		vol, err := docker.VolumeInspect(context.Background(), v)
		if err != nil {
			t.Fatalf("volume %s: %v", v, err)
		}
		if vol.Labels[labelDeployment] != d.name || vol.Labels[labelRole] != role {
			t.Errorf("volume %s labels %v, want %s=%s and %s=%s", v, vol.Labels, labelDeployment, d.name, labelRole, role)
		}
	}
	if got := d.backupList(); len(got) != 0 {
		t.Errorf("a fresh install took backups: %+v", got)
	}
}

func TestNoOpPlanAfterApply(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "noop", options{version: "v0.5.1"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	before := d.mustInspect()

	r := d.gsd("plan", "--detailed-exitcode")
	expectCode(t, r, 0)
	expectOutput(t, r, "No changes.", "database at "+head051)

	r = d.gsd("plan", "--json")
	expectCode(t, r, 0)
	var p struct {
		Changes *bool `json:"changes"`
		Refused *bool `json:"refused"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("plan --json does not parse: %v\n%s", err, r.stdout)
	}
	if p.Changes == nil || *p.Changes || p.Refused == nil || *p.Refused {
		t.Errorf("plan --json: changes %v, refused %v; want both present and false", deref(p.Changes), deref(p.Refused))
	}

	r = d.gsd("apply", "--auto-approve")
	expectCode(t, r, 0)
	expectOutput(t, r, "No changes.")
	d.expectUnchanged(before)
}

func deref(b *bool) any {
	if b == nil {
		return "absent"
	}
	return *b
}

func TestUnmanagedContainerRefused(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "unmanaged", options{version: "v0.5.1"})
	ctx := context.Background()
	created, err := docker.ContainerCreate(ctx,
		&container.Config{Image: repository + ":v0.5.1-cpu", Labels: map[string]string{"made-by": "hand"}},
		&container.HostConfig{}, nil, nil, d.container)
	if err != nil {
		t.Fatalf("create the unmanaged container: %v", err)
	}
	if err := docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start the unmanaged container: %v", err)
	}
	before := d.mustInspect()

	for _, args := range [][]string{{"plan"}, {"plan", "--detailed-exitcode"}, {"apply", "--auto-approve"}} {
		r := d.gsd(args[0], args[1:]...)
		expectCode(t, r, 1)
		expectOutput(t, r, "refused (unmanaged-container)", "a container named "+d.container+" exists but was not created by gpustack-deploy")
	}

	d.expectUnchanged(before)
	after := d.mustInspect()
	if _, ok := after.Config.Labels[labelDeployment]; ok || after.Config.Labels["made-by"] != "hand" {
		t.Errorf("the unmanaged container's labels changed: %v", after.Config.Labels)
	}
	for _, v := range []string{d.data, d.cache} {
		if _, err := docker.VolumeInspect(ctx, v); !cerrdefs.IsNotFound(err) {
			t.Errorf("a refused apply created volume %s (inspect: %v)", v, err)
		}
	}
}
