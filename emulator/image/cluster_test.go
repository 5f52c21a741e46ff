package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/gpustack-deploy/gpustack-deploy/emulator"
)

// startNode starts ref with cmd appended to `gpustack start`, env and the
// volume at /var/lib/gpustack on the default bridge, publishing port on
// loopback when it is set; the container is removed at cleanup.
func startNode(t *testing.T, cli client.APIClient, ref, vol, port string, cmd []string, env ...string) string {
	t.Helper()
	ctx := context.Background()
	cfg := &container.Config{Image: ref, Env: env, Cmd: cmd}
	hc := &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/var/lib/gpustack"}}}
	if port != "" {
		p := nat.Port(port + "/tcp")
		cfg.ExposedPorts = nat.PortSet{p: {}}
		hc.PortBindings = nat.PortMap{p: {{HostIP: "127.0.0.1"}}}
	}
	resp, err := cli.ContainerCreate(ctx, cfg, hc, nil, nil, "gpustack-emu-test-"+suffix(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove container: %v", err)
		}
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

func publishedPort(t *testing.T, cli client.APIClient, id, port string) string {
	t.Helper()
	info, err := cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	b := info.NetworkSettings.Ports[nat.Port(port+"/tcp")]
	if len(b) == 0 || b[0].HostIP != "127.0.0.1" {
		t.Fatalf("port %s not published on loopback: %+v", port, b)
	}
	return b[0].HostPort
}

func adminCall(t *testing.T, method, url, key string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, data)
		}
	}
	return resp.StatusCode
}

// TestV2Cluster: a v2.2.3 server and two workers on the default bridge.
// They register and send heartbeats; stopped beyond both (shortened) grace
// periods, the worker in maintenance keeps its instances and the other
// loses them; recreated on its volume a worker keeps its identity; a
// worker without a token fails as #5714; v2.2.0 against v2.2.3 warns.
func TestV2Cluster(t *testing.T) {
	cli := engine(t)
	needPostgresBase(t, cli)
	ctx := context.Background()
	v223, _ := SpecFor("gpustack/gpustack", "v2.2.3")
	start := time.Now()
	if err := Build(ctx, cli, moduleRoot(t), v223); err != nil {
		t.Fatal(err)
	}
	t.Logf("build: %s", time.Since(start).Round(time.Millisecond))

	const token, key = "cluster-token-5714", "gpustack_00112233aabbccdd_00112233445566778899aabbccddeeff"
	srvID, _ := healthyOn(t, cli, v223.Ref, newVolume(t, cli), "GPUSTACK_TOKEN="+token, emulator.EnvAdminAPIKey+"="+key,
		emulator.EnvHeartbeatGrace+"=2", emulator.EnvRescheduleGrace+"=3")
	base := "http://127.0.0.1:" + hostPort(t, cli, srvID)
	info, err := cli.ContainerInspect(ctx, srvID)
	if err != nil {
		t.Fatal(err)
	}
	ep := info.NetworkSettings.Networks["bridge"]
	if ep == nil || ep.IPAddress == "" {
		t.Fatal("server has no bridge IP")
	}
	serverURL := "http://" + ep.IPAddress + ":80"

	workers := func() map[string]emulator.Worker {
		t.Helper()
		var l emulator.WorkerList
		if code := adminCall(t, http.MethodGet, base+"/v2/workers", key, nil, &l); code != http.StatusOK {
			t.Fatalf("GET /v2/workers: %d", code)
		}
		out := map[string]emulator.Worker{}
		for _, w := range l.Items {
			out[w.Name] = w
		}
		return out
	}
	wait := func(what string, limit time.Duration, cond func() bool, ids ...string) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				var all strings.Builder
				for _, id := range append([]string{srvID}, ids...) {
					all.WriteString(logs(t, cli, id))
				}
				t.Fatalf("timed out waiting %s for %s; logs:\n%s", limit, what, all.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	instancesOn := func(id int64) int {
		t.Helper()
		var out []map[string]float64
		q := fmt.Sprintf("SELECT count(*) AS n FROM model_instances WHERE worker_id = %d", id)
		if err := json.Unmarshal([]byte(execIn(t, cli, srvID, "gpustack", "emulator", "sql", q)), &out); err != nil || len(out) != 1 {
			t.Fatalf("instances of %d: %v %v", id, out, err)
		}
		return int(out[0]["n"])
	}

	volA, volB := newVolume(t, cli), newVolume(t, cli)
	workerArgs := []string{"--server-url", serverURL, "--token", token}
	hb := emulator.EnvHeartbeatInterval + "=500ms"
	a := startNode(t, cli, v223.Ref, volA, "10150", append(workerArgs, "--worker-name", "worker-a"), hb)
	b := startNode(t, cli, v223.Ref, volB, "", append(workerArgs, "--worker-name", "worker-b"), hb, emulator.EnvRelease+"=v2.2.0")
	var ws map[string]emulator.Worker
	wait("two READY workers", 30*time.Second, func() bool {
		ws = workers()
		return len(ws) == 2 && ws["worker-a"].State == "READY" && ws["worker-b"].State == "READY"
	}, a, b)
	if ws["worker-a"].WorkerVersion != "v2.2.3" || ws["worker-b"].WorkerVersion != "v2.2.0" {
		t.Errorf("worker_version: %+v", ws)
	}
	first := ws["worker-a"].HeartbeatTime
	wait("a heartbeat", 10*time.Second, func() bool { return workers()["worker-a"].HeartbeatTime != first }, a)
	resp, err := http.Get("http://127.0.0.1:" + publishedPort(t, cli, a, "10150") + "/version")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"version":"v2.2.3"`) {
		t.Errorf("worker /version: %s", body)
	}
	if l := logs(t, cli, b); !strings.Contains(l, "Version mismatch detected: worker version v2.2.0, server version v2.2.3. Please upgrade your worker to match the server version.") {
		t.Errorf("worker-b: no mismatch warning:\n%s", l)
	}
	if l := logs(t, cli, a); strings.Contains(l, "Version mismatch") {
		t.Errorf("worker-a warns:\n%s", l)
	}

	idA, idB := ws["worker-a"].ID, ws["worker-b"].ID
	execIn(t, cli, srvID, "gpustack", "emulator", "seed", "--models", "1", "--instances", "2", "--worker", "worker-a")
	execIn(t, cli, srvID, "gpustack", "emulator", "seed", "--instances", "2", "--worker", "worker-b")
	if na, nb := instancesOn(idA), instancesOn(idB); na != 2 || nb != 2 {
		t.Fatalf("seeded a=%d b=%d", na, nb)
	}
	var got emulator.Worker
	code := adminCall(t, http.MethodPut, fmt.Sprintf("%s/v2/workers/%d", base, idB), key,
		map[string]any{"maintenance": map[string]any{"enabled": true, "message": "upgrade"}}, &got)
	if code != http.StatusOK || got.State != "MAINTENANCE" || got.Maintenance == nil || !got.Maintenance.Enabled {
		t.Fatalf("PUT maintenance: %d %+v", code, got)
	}

	stopped := time.Now()
	for _, id := range []string{a, b} {
		secs := 10
		if err := cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil {
			t.Fatal(err)
		}
	}
	wait("worker-a NOT_READY", 20*time.Second, func() bool { return workers()["worker-a"].State == "NOT_READY" })
	wait("worker-a's instances deleted", 20*time.Second, func() bool { return instancesOn(idA) == 0 })
	if d := time.Since(stopped); d < 3500*time.Millisecond {
		t.Errorf("instances deleted %s after the stop, before both graces (5 s, less one heartbeat interval and the stop)", d)
	}
	t.Logf("worker-a's instances deleted %s after the stop", time.Since(stopped).Round(time.Millisecond))
	time.Sleep(time.Second)
	if n := instancesOn(idB); n != 2 {
		t.Errorf("worker-b in maintenance: %d instances, want 2", n)
	}
	if st := workers()["worker-b"].State; st != "MAINTENANCE" {
		t.Errorf("worker-b: %s", st)
	}
	var dbg emulator.DebugInfo
	if adminCall(t, http.MethodGet, base+"/debug/emulator", key, nil, &dbg); dbg.Rescheduled != 2 {
		t.Errorf("/debug/emulator rescheduled %d, want 2", dbg.Rescheduled)
	}
	if n := strings.Count(logs(t, cli, srvID), "Rescheduling model instance"); n != 2 {
		t.Errorf("%d rescheduling lines, want 2", n)
	}

	// Recreated on its volume without --worker-name: the same worker.
	if err := cli.ContainerRemove(ctx, a, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	a2 := startNode(t, cli, v223.Ref, volA, "", workerArgs, hb)
	wait("worker-a READY again", 30*time.Second, func() bool {
		w := workers()
		return len(w) == 2 && w["worker-a"].State == "READY"
	}, a2)
	if id := workers()["worker-a"].ID; id != idA {
		t.Errorf("recreated worker-a has id %d, was %d", id, idA)
	}

	// Without its token a worker cannot register (#5714).
	c := startNode(t, cli, v223.Ref, newVolume(t, cli), "", []string{"--server-url", serverURL}, hb)
	if code := exited(t, cli, c); code == 0 {
		t.Errorf("worker without a token: exit 0")
	}
	if l := logs(t, cli, c); !strings.Contains(l, "'NoneType' object has no attribute 'create_async'") {
		t.Errorf("worker without a token: no #5714 line:\n%s", l)
	}
	if n := len(workers()); n != 2 {
		t.Errorf("%d workers after the tokenless one", n)
	}
}
