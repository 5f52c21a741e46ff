package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"
)

// shellIn runs a shell script in a one-off container of the v0.5.1 emulator
// image (which carries a busybox toolbox, as GPUStack's images carry a
// shell) with volume mounted at /v, and returns its standard output.
func shellIn(t testing.TB, volume, script string) string {
	t.Helper()
	needToolbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	created, err := docker.ContainerCreate(ctx,
		&container.Config{Image: repository + ":v0.5.1-cpu", Entrypoint: []string{"/bin/sh", "-c", script}, Cmd: []string{}},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: volume, Target: "/v"}}}, nil, nil, "")
	if err != nil {
		t.Fatalf("create shell container on %s: %v", volume, err)
	}
	defer removeContainer(t, created.ID)
	waitc, errc := docker.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start shell container: %v", err)
	}
	select {
	case w := <-waitc:
		if w.StatusCode != 0 {
			t.Fatalf("script on %s exited %d", volume, w.StatusCode)
		}
	case err := <-errc:
		t.Fatalf("wait for shell container: %v", err)
	}
	rc, err := docker.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, rc); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// modelFiles writes model-like files below dir in volume and returns their
// listing ("<sha256>  <path>" lines, sorted).
func modelFiles(t testing.TB, volume, dir string) string {
	t.Helper()
	shellIn(t, volume, fmt.Sprintf(`set -e
mkdir -p /v/%[1]s/huggingface/org/model /v/%[1]s/model_scope/org/other
dd if=/dev/urandom of=/v/%[1]s/huggingface/org/model/weights.bin bs=1M count=3 2>/dev/null
dd if=/dev/urandom of=/v/%[1]s/model_scope/org/other/model.gguf bs=1M count=1 2>/dev/null
echo '{"architectures":["Qwen2"]}' > /v/%[1]s/huggingface/org/model/config.json`, dir))
	return listing(t, volume, dir)
}

func listing(t testing.TB, volume, dir string) string {
	t.Helper()
	return shellIn(t, volume, fmt.Sprintf(`cd /v/%s && find . -type f -exec sha256sum {} + | sort -k2`, dir))
}

// emulatorInfo reads the emulator's /debug/emulator on the loopback port.
func (d *deployment) emulatorInfo() (files int64, cacheDir string) {
	d.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/emulator", d.port))
	if err != nil {
		d.t.Fatalf("GET /debug/emulator: %v", err)
	}
	defer resp.Body.Close()
	var info struct {
		CacheDir   string `json:"cache_dir"`
		CacheFiles int64  `json:"cache_files"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		d.t.Fatal(err)
	}
	return info.CacheFiles, info.CacheDir
}

// TestFreshRedeployKeepsTheCache: --replace=data throws the database away
// (after saving it), keeps the model cache, and asks for the volume's name.
func TestFreshRedeployKeepsTheCache(t *testing.T) {
	needToolbox(t)
	t.Parallel()
	d := newDeployment(t, "fresh", options{version: "v0.5.1"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	rows := d.seed("--models", "3", "--instances", "2")
	models := modelFiles(t, d.cache, ".")
	before := d.mustInspect()

	plan := d.gsd("plan", "--replace=data")
	expectCode(t, plan, 0)
	expectOutput(t, plan, "delete volume "+d.data, "the model cache "+d.cache+" is kept: 3 files, 4.0 MiB")

	// --auto-approve does not answer the volume question; no answer = nothing done.
	refused := d.gsd("apply", "--auto-approve", "--replace=data")
	expectCode(t, refused, 1)
	expectOutput(t, refused, "deleting volume "+d.data+" was not confirmed; nothing was changed")
	d.expectUnchanged(before)

	done := d.gsd("apply", "--auto-approve", "--replace="+d.name+".data", "--yes-delete-volume="+d.data)
	expectCode(t, done, 0)
	expectOutput(t, done, "volume "+d.data+" deleted")
	d.expectRunning("v0.5.1-cpu", head051)
	if got := d.rows(); got["models"] != 0 || got["model_instances"] != 0 {
		t.Errorf("the fresh database holds %v, want no models or instances", got)
	}
	if got := listing(t, d.cache, "."); got != models {
		t.Errorf("the model cache changed:\n%s\nwant\n%s", got, models)
	}
	if files, dir := d.emulatorInfo(); files != 3 {
		t.Errorf("GPUStack sees %d files in %s, want the 3 model files kept", files, dir)
	}
	backups := d.backupList()
	if len(backups) != 1 || !backups[0].Verified || backups[0].Rows["models"] != rows["models"] {
		t.Errorf("want one verified backup of the old database with %d models, got %+v", rows["models"], backups)
	}
}

// TestCacheSplitOutOfTheDataVolume: a deployment whose model cache lives in
// the data volume (as with the documented one-liner) gets a cache volume
// of its own: the files are copied and checked, the container switches,
// and only then is the old copy removed.
func TestCacheSplitOutOfTheDataVolume(t *testing.T) {
	needToolbox(t)
	t.Parallel()
	d := newDeployment(t, "split", options{version: "v0.5.1", noCache: true})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	rows := d.seed("--models", "2")
	models := modelFiles(t, d.data, "cache")
	if _, dir := d.emulatorInfo(); dir != "/var/lib/gpustack/cache" {
		t.Fatalf("before the split GPUStack keeps its cache in %s, want the data volume's", dir)
	}

	d.write(options{version: "v0.5.1"})
	plan := d.gsd("plan")
	expectCode(t, plan, 0)
	expectOutput(t, plan, "copy model cache from "+d.data+"/cache into "+d.cache+" (3 files, 4.0 MiB)", "remove old cache copy")

	r := d.gsd("apply", "--auto-approve")
	expectCode(t, r, 0)
	expectOutput(t, r, "copied 3 model files", "removed the old copy of the model cache")
	d.expectRunning("v0.5.1-cpu", head051)
	if got := listing(t, d.cache, "."); got != models {
		t.Errorf("the cache volume holds:\n%s\nwant\n%s", got, models)
	}
	if left := strings.TrimSpace(listing(t, d.data, "cache")); left != "" {
		t.Errorf("the data volume still holds model files:\n%s", left)
	}
	if files, dir := d.emulatorInfo(); files != 3 || dir != "/var/lib/gpustack-cache" {
		t.Errorf("after the split GPUStack sees %d files in %s, want 3 in /var/lib/gpustack-cache", files, dir)
	}
	expectRowsKept(t, rows, d.rows())
	expectCode(t, d.gsd("plan", "--detailed-exitcode"), 0)
}

// TestDestroyKeepsVolumesAndBackups: destroy removes containers only; a
// volume goes only when named and confirmed.
func TestDestroyKeepsVolumesAndBackups(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "destroy", options{version: "v0.5.1"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	expectCode(t, d.gsd("backup"), 0)

	expectCode(t, d.gsd("destroy", "--auto-approve"), 0)
	if ct := inspect(t, d.container); ct != nil {
		t.Fatalf("container %s still exists", d.container)
	}
	for _, v := range []string{d.data, d.cache} {
		if _, err := docker.VolumeInspect(context.Background(), v); err != nil {
			t.Errorf("volume %s is gone: %v", v, err)
		}
	}
	if len(d.backupList()) != 1 {
		t.Errorf("the backup is gone")
	}

	// Back again on the same data: the database is still there.
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	d.expectRunning("v0.5.1-cpu", head051)

	expectCode(t, d.gsd("destroy", "--auto-approve", "--delete-volume", d.cache), 1)
	if _, err := docker.VolumeInspect(context.Background(), d.cache); err != nil {
		t.Errorf("an unconfirmed deletion removed %s: %v", d.cache, err)
	}
	expectCode(t, d.gsd("destroy", "--auto-approve", "--delete-volume", d.cache, "--yes-delete-volume", d.cache), 0)
	if _, err := docker.VolumeInspect(context.Background(), d.cache); err == nil {
		t.Errorf("volume %s survived a confirmed deletion", d.cache)
	}
	if _, err := docker.VolumeInspect(context.Background(), d.data); err != nil {
		t.Errorf("volume %s was deleted without being named: %v", d.data, err)
	}
}
