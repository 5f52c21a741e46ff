package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
)

// TestDoctorNamesTheCauseAndTheBackup is the seed case: a v0.5.1 server
// with rows and a verified backup; someone stops it and runs the main-cpu
// development image by hand on the same volume. That image stamps
// c45e397531d1 without model_instances.resolved_path and dies with "no such
// column" (exit code 0). doctor must name the cause and the backup, and the
// way back it ranks first must work.
func TestDoctorNamesTheCauseAndTheBackup(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "doctor", options{version: "v0.5.1"})
	if r := d.run("doctor", "--help"); strings.Contains(r.output(), "unknown command") {
		t.Skip("the doctor command is not registered in main.go yet")
	}
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	seeded := d.seed("--models", "3", "--instances", "3", "--users", "2")
	expectCode(t, d.gsd("backup"), 0)
	backups := d.backupList()
	if len(backups) != 1 || !backups[0].Verified {
		t.Fatalf("want one verified backup, got %+v", backups)
	}
	id := backups[0].ID

	healthy := d.gsd("doctor")
	expectCode(t, healthy, 0)
	expectOutput(t, healthy, "No problems found.", "Nothing to do.")

	hand := d.runByHand(t, "main-cpu")

	byName := d.run("doctor", "--container", hand, "--backup-dir", filepath.Join(d.dir, "backups"), "--deployment", d.name)
	expectCode(t, byName, 1)
	expectOutput(t, byName,
		"the database is stamped "+head060+" but lacks",
		"no such column: model_instances.resolved_path",
		"#1900",
		"exit code 0 is no proof of success",
		`"main-cpu" is a development tag`,
		"1. Restore backup "+id,
		"at v0.5.1-cpu",
	)

	byFile := d.gsd("doctor", "--json")
	expectCode(t, byFile, 1)
	var reports []struct {
		Healthy  bool `json:"healthy"`
		Findings []struct {
			Code     string `json:"code"`
			Evidence string `json:"evidence"`
		} `json:"findings"`
		Options []struct {
			Kind     string   `json:"kind"`
			Commands []string `json:"commands"`
		} `json:"options"`
	}
	if err := json.Unmarshal([]byte(byFile.stdout), &reports); err != nil || len(reports) != 1 {
		t.Fatalf("doctor --json: %v\n%s", err, byFile.stdout)
	}
	codes := map[string]string{}
	for _, f := range reports[0].Findings {
		codes[f.Code] = f.Evidence
	}
	for _, code := range []string{"db-probe-mismatch", "log-no-such-column", "volume-shared", "image-dev-tag"} {
		if _, ok := codes[code]; !ok {
			t.Errorf("doctor -f: no %s finding in %v", code, codes)
		}
	}
	if ev := codes["log-no-such-column"]; !strings.Contains(ev, "model_instances.resolved_path") {
		t.Errorf("the no-such-column evidence is %q, want the log line", ev)
	}
	opts := reports[0].Options
	if len(opts) < 2 || opts[0].Kind != "restore" || opts[len(opts)-1].Kind != "fresh" {
		t.Fatalf("options = %+v, want restore first and the fresh redeploy last", opts)
	}
	restore := "gpustack-deploy restore " + id + " -f " + d.file
	if !containsString(opts[0].Commands, restore) {
		t.Fatalf("first option's commands = %q, want %q", opts[0].Commands, restore)
	}

	// Follow the first way back (the hand-made container is removed first,
	// as the volume-shared finding says).
	removeContainer(t, hand)
	expectCode(t, d.run(append(strings.Fields(restore)[1:], "--auto-approve")...), 0)
	d.expectRunning("v0.5.1-cpu", head051)
	expectRowsKept(t, seeded, d.rows())
	expectCode(t, d.gsd("doctor"), 0)
}

// runByHand stops the deployment's container and runs the image tag on the
// same data volume the way a person would with docker run, then waits for
// it to stop. It returns the container's name.
func (d *deployment) runByHand(t testing.TB, tag string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	grace := 10
	if err := docker.ContainerStop(ctx, d.container, container.StopOptions{Timeout: &grace}); err != nil {
		t.Fatalf("stop %s: %v", d.container, err)
	}
	name := "hand-" + d.name
	t.Cleanup(func() { removeContainer(t, name) })
	created, err := docker.ContainerCreate(ctx,
		&container.Config{Image: repository + ":" + tag, Cmd: []string{"--disable-worker"}},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: d.data, Target: "/var/lib/gpustack"}}},
		nil, nil, name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if err := docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	waitCh, errCh := docker.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
	select {
	case res := <-waitCh:
		if res.StatusCode != 0 {
			t.Fatalf("%s exited with %d; the SQLite-era image should exit 0 after a failed start", name, res.StatusCode)
		}
	case err := <-errCh:
		t.Fatalf("wait for %s: %v", name, err)
	}
	return name
}

func removeContainer(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("remove container %s: %v", name, err)
	}
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
