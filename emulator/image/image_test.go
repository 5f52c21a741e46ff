package image

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
)

func TestSpecFor(t *testing.T) {
	cases := map[string]string{"v0.5.1-cpu": "v0.5.1", "main-cpu": "main", "0.3.2": "0.3.2", "v0.6.0-rocm": "v0.6.0", "v2.2.3": "v2.2.3", "v2.0": "v2.0.3"}
	for tag, want := range cases {
		spec, err := SpecFor("gpustack/gpustack", tag)
		if err != nil || spec.Release != want || spec.Ref != "gpustack/gpustack:"+tag {
			t.Errorf("%s: %+v %v", tag, spec, err)
		}
	}
	if _, err := SpecFor("gpustack/gpustack", "latest"); err == nil {
		t.Error("latest: no error")
	}
}

func TestDockerfile(t *testing.T) {
	df, err := Spec{Ref: "quay.io/gpustack/gpustack:main-cpu", Release: "main", Env: map[string]string{"B": "2", "A": "x y"}}.dockerfile()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"FROM scratch\n", "COPY gpustack /usr/local/bin/gpustack\n", `ENV GPUSTACK_EMULATOR_RELEASE="main"`,
		"ENV A=\"x y\"\nENV B=\"2\"\n", `org.opencontainers.image.version="main"`,
		`org.opencontainers.image.source="https://github.com/gpustack/gpustack"`, `io.gpustack-deploy.emulator="true"`,
		`ENTRYPOINT ["/usr/local/bin/gpustack", "start"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q:\n%s", want, df)
		}
	}
	df, _ = Spec{Ref: "gpustack/gpustack:v0.5.1-rocm", Release: "v0.5.1"}.dockerfile()
	if !strings.Contains(df, `ENTRYPOINT ["/root/.local/bin/gpustack", "start"]`) {
		t.Errorf("rocm entrypoint:\n%s", df)
	}
}

func TestEmulatorModules(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{.Module.Path}}{{end}}", "../../cmd/gpustack-emulator").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	want := append([]string{"github.com/gpustack-deploy/gpustack-deploy"}, emulatorModules...)
	for _, m := range strings.Fields(string(out)) {
		if !slices.Contains(want, m) {
			t.Errorf("the emulator links %s: add it to emulatorModules so the source hash covers it", m)
		}
	}
}

// engine connects to the local Docker engine; without one the test skips,
// or fails when CI=true.
func engine(t *testing.T) client.APIClient {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = cli.Ping(ctx)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("docker engine required with CI=true: %v", err)
		}
		t.Skipf("no docker engine: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

func suffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// runContainer creates and starts a container of ref with the named volume
// at /var/lib/gpustack and port 80 published on 127.0.0.1 only; both are
// removed at cleanup.
func runContainer(t *testing.T, cli client.APIClient, ref string, env ...string) string {
	t.Helper()
	ctx := context.Background()
	name := "gpustack-emu-test-" + suffix(t)
	if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: name}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.VolumeRemove(context.Background(), name, true); err != nil {
			t.Errorf("remove volume: %v", err)
		}
	})
	resp, err := cli.ContainerCreate(ctx,
		&container.Config{Image: ref, Env: env, ExposedPorts: nat.PortSet{"80/tcp": {}}},
		&container.HostConfig{
			Mounts:       []mount.Mount{{Type: mount.TypeVolume, Source: name, Target: "/var/lib/gpustack"}},
			PortBindings: nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1"}}},
		}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		err := cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
		if err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

func hostPort(t *testing.T, cli client.APIClient, id string) string {
	t.Helper()
	info, err := cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	b := info.NetworkSettings.Ports["80/tcp"]
	if len(b) == 0 || b[0].HostIP != "127.0.0.1" {
		t.Fatalf("port 80 not published on loopback: %+v", b)
	}
	return b[0].HostPort
}

func logs(t *testing.T, cli client.APIClient, id string) string {
	t.Helper()
	rc, err := cli.ContainerLogs(context.Background(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func execIn(t *testing.T, cli client.APIClient, id string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		t.Fatal(err)
	}
	res, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exec %v: exit %d %v: %s", cmd, res.ExitCode, err, stderr.String())
	}
	return stdout.String()
}

func TestImageRuns(t *testing.T) {
	cli := engine(t)
	ctx := context.Background()
	v051, _ := SpecFor("gpustack/gpustack", "v0.5.1-cpu")
	dev, _ := SpecFor("gpustack/gpustack", "main-cpu")
	start := time.Now()
	if err := Build(ctx, cli, moduleRoot(t), v051, dev); err != nil {
		t.Fatal(err)
	}
	t.Logf("build: %s", time.Since(start))
	start = time.Now()
	if err := Build(ctx, cli, moduleRoot(t), v051, dev); err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuild (up to date): %s", time.Since(start))
	info, err := cli.ImageInspect(ctx, v051.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if l := info.Config.Labels; l[LabelVersion] != "v0.5.1" || l[LabelEmulator] != "true" || l[LabelBuild] == "" {
		t.Errorf("labels: %v", l)
	}

	t.Run("v0.5.1", func(t *testing.T) {
		id := runContainer(t, cli, v051.Ref, "GPUSTACK_EMULATOR_GIT_COMMIT=abcdef1234")
		base := "http://127.0.0.1:" + hostPort(t, cli, id)
		waitHealthy(t, base+"/healthz", func() string { return logs(t, cli, id) })
		resp, err := http.Get(base + "/version")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(body)) != `{"version":"v0.5.1","git_commit":"abcdef1"}` {
			t.Errorf("/version: %s", body)
		}
		log := logs(t, cli, id)
		for _, want := range []string{
			"gpustack.server.server - INFO - Running database migration.",
			"gpustack.server.server - INFO - Database migration completed.",
			"uvicorn.error - INFO - Uvicorn running on http://0.0.0.0:80",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		var counts map[string]int
		execIn(t, cli, id, "gpustack", "emulator", "seed", "--models", "2", "--instances", "1")
		if err := json.Unmarshal([]byte(execIn(t, cli, id, "gpustack", "emulator", "rows")), &counts); err != nil {
			t.Fatal(err)
		}
		if counts["users"] != 1 || counts["models"] != 2 || counts["model_instances"] != 1 || counts["alembic_version"] != 1 {
			t.Errorf("rows: %v", counts)
		}
		if v := execIn(t, cli, id, "gpustack", "version"); v != "v0.5.1 (abcdef1)\n" {
			t.Errorf("gpustack version: %q", v)
		}
		secs := 10
		if err := cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil {
			t.Fatal(err)
		}
		st, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State.ExitCode != 0 || !strings.Contains(logs(t, cli, id), "uvicorn.error - INFO - Finished server process") {
			t.Errorf("SIGTERM: exit %d; log:\n%s", st.State.ExitCode, logs(t, cli, id))
		}
	})

	t.Run("main exits 0 on the #1900 gap", func(t *testing.T) {
		id := runContainer(t, cli, dev.Ref)
		waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		statusC, errC := cli.ContainerWait(waitCtx, id, container.WaitConditionNotRunning)
		select {
		case st := <-statusC:
			if st.StatusCode != 0 {
				t.Errorf("exit %d, want 0", st.StatusCode)
			}
		case err := <-errC:
			t.Fatal(err)
		}
		want := "gpustack.cmd.start - ERROR - Error running server: (sqlite3.OperationalError) no such column: model_instances.resolved_path"
		if log := logs(t, cli, id); !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	})
}

func waitHealthy(t *testing.T, url string, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.TrimSpace(string(body)) == `"ok"` {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not healthy; log:\n%s", url, logs())
}
