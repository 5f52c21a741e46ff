package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	testAdminKey     = "gpustack_0123456789abcdef_0123456789abcdef0123456789abcdef"
	testClusterToken = "cluster-token-1"
)

// apiCall sends a request with the admin key (when key is set) and decodes
// the JSON answer into out; it returns the status.
func apiCall(t *testing.T, method, url, key string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, data)
		}
	}
	return resp.StatusCode
}

func listWorkers(t *testing.T, base string) map[string]Worker {
	t.Helper()
	var l WorkerList
	if code := apiCall(t, http.MethodGet, base+"/v2/workers", testAdminKey, nil, &l); code != http.StatusOK {
		t.Fatalf("GET /v2/workers: %d", code)
	}
	out := map[string]Worker{}
	for _, w := range l.Items {
		out[w.Name] = w
	}
	return out
}

// waitFor polls cond every 50 ms up to limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; logs:\n%s", limit, what, logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startWorker(t *testing.T, rel, dir, serverURL string, env map[string]string) *run {
	t.Helper()
	all := map[string]string{
		"GPUSTACK_SERVER_URL": serverURL, "GPUSTACK_WORKER_PORT": "0", EnvHeartbeatInterval: "200ms",
	}
	for k, v := range env {
		all[k] = v
	}
	return startRun(t, rel, dir, all)
}

func instancesOn(t *testing.T, dir string, workerID int64) int {
	t.Helper()
	out := sqlRows(t, dir, fmt.Sprintf("SELECT count(*) AS n FROM model_instances WHERE worker_id = %d", workerID))
	return int(out[0]["n"].(float64))
}

// TestCluster: two workers register and send heartbeats; stopped beyond
// both grace periods, the one in maintenance keeps its instances and the
// other loses them; a worker restarted on its data dir keeps its id.
func TestCluster(t *testing.T) {
	t.Parallel()
	dir, env := pgTestDir(t)
	srv := v2Run(t, "v2.2.3", dir, env, map[string]string{
		"GPUSTACK_TOKEN": testClusterToken, EnvAdminAPIKey: testAdminKey,
		EnvHeartbeatGrace: "1", EnvRescheduleGrace: "1.5",
	})
	serving(t, srv, "v2.2.3")
	base := "http://127.0.0.1:" + srv.port

	// The admin API wants the key.
	if code := apiCall(t, http.MethodGet, base+"/v2/workers", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /v2/workers without a key: %d", code)
	}
	if code := apiCall(t, http.MethodGet, base+"/v2/workers", "gpustack_wrong", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /v2/workers with a wrong key: %d", code)
	}

	dirA, dirB := t.TempDir(), t.TempDir()
	a := startWorker(t, "v2.2.3", dirA, base, map[string]string{"GPUSTACK_TOKEN": testClusterToken, "GPUSTACK_WORKER_NAME": "worker-a"})
	serving(t, a, "worker a")
	b := startWorker(t, "v2.2.0", dirB, base, map[string]string{"GPUSTACK_TOKEN": testClusterToken, "GPUSTACK_WORKER_NAME": "worker-b"})
	serving(t, b, "worker b")
	logs := func() string { return srv.stdout.String() + a.stdout.String() + b.stdout.String() }

	var ws map[string]Worker
	waitFor(t, 10*time.Second, "two READY workers", func() bool {
		ws = listWorkers(t, base)
		return len(ws) == 2 && ws["worker-a"].State == stateReady && ws["worker-b"].State == stateReady
	}, logs)
	if ws["worker-a"].WorkerVersion != "v2.2.3" || ws["worker-b"].WorkerVersion != "v2.2.0" {
		t.Errorf("worker_version: %+v", ws)
	}
	if ws["worker-a"].Maintenance == nil || ws["worker-a"].Maintenance.Enabled {
		t.Errorf("maintenance of a new worker: %+v", ws["worker-a"].Maintenance)
	}
	// Heartbeats move heartbeat_time.
	first := ws["worker-a"].HeartbeatTime
	waitFor(t, 5*time.Second, "a heartbeat", func() bool { return listWorkers(t, base)["worker-a"].HeartbeatTime != first }, logs)

	// The worker's own probes and version.
	var v VersionInfo
	if code := apiCall(t, http.MethodGet, "http://127.0.0.1:"+b.port+"/version", "", nil, &v); code != 200 || v.Version != "v2.2.0" {
		t.Errorf("worker /version: %d %+v", code, v)
	}
	if code := apiCall(t, http.MethodGet, "http://127.0.0.1:"+a.port+"/healthz", "", nil, nil); code != 200 {
		t.Errorf("worker /healthz: %d", code)
	}
	// v2.2.0+ warns about the mismatch, and registers anyway.
	if !strings.Contains(b.stdout.String(), "Version mismatch detected: worker version v2.2.0, server version v2.2.3. Please upgrade your worker to match the server version.") {
		t.Errorf("worker b: no mismatch warning:\n%s", b.stdout)
	}
	if strings.Contains(a.stdout.String(), "Version mismatch") {
		t.Errorf("worker a warns on the same version:\n%s", a.stdout)
	}

	idA, idB := ws["worker-a"].ID, ws["worker-b"].ID
	emulatorCmd(t, dir, nil, "seed", "--models", "1", "--instances", "2", "--worker", "worker-a")
	emulatorCmd(t, dir, nil, "seed", "--instances", "3", "--worker", "worker-b")
	if na, nb := instancesOn(t, dir, idA), instancesOn(t, dir, idB); na != 2 || nb != 3 {
		t.Fatalf("seeded instances a=%d b=%d", na, nb)
	}

	// Maintenance on b, through the public API.
	var got Worker
	code := apiCall(t, http.MethodPut, fmt.Sprintf("%s/v2/workers/%d", base, idB), testAdminKey,
		map[string]any{"maintenance": map[string]any{"enabled": true, "message": "upgrade"}}, &got)
	if code != http.StatusOK || got.State != stateMaintenance || got.Maintenance == nil || !got.Maintenance.Enabled || got.Maintenance.Message != "upgrade" {
		t.Fatalf("PUT maintenance: %d %+v", code, got)
	}
	if code := apiCall(t, http.MethodPut, base+"/v2/workers/999", testAdminKey, map[string]any{"maintenance": map[string]any{"enabled": true}}, nil); code != http.StatusNotFound {
		t.Errorf("PUT unknown worker: %d", code)
	}

	// Both stop; 1 s + 1.5 s after a's last heartbeat its instances are
	// gone, b's are not. The graces count from the last heartbeat the
	// server recorded, which may come a little before the stop.
	a.stop()
	b.stop()
	lastBeat, err := time.ParseInLocation("2006-01-02T15:04:05.000000", listWorkers(t, base)["worker-a"].HeartbeatTime, time.UTC)
	if err != nil {
		t.Fatalf("heartbeat_time of worker-a: %v", err)
	}
	waitFor(t, 10*time.Second, "worker-a NOT_READY", func() bool { return listWorkers(t, base)["worker-a"].State == stateNotReady }, logs)
	if d := time.Since(lastBeat); d < 950*time.Millisecond {
		t.Errorf("NOT_READY %s after the last heartbeat, before the 1 s grace", d)
	}
	waitFor(t, 10*time.Second, "worker-a's instances deleted", func() bool { return instancesOn(t, dir, idA) == 0 }, logs)
	if d := time.Since(lastBeat); d < 2450*time.Millisecond {
		t.Errorf("instances deleted %s after the last heartbeat, before both graces (2.5 s)", d)
	}
	time.Sleep(500 * time.Millisecond)
	if n := instancesOn(t, dir, idB); n != 3 {
		t.Errorf("worker-b in maintenance: %d instances left, want 3", n)
	}
	if st := listWorkers(t, base)["worker-b"].State; st != stateMaintenance {
		t.Errorf("worker-b state %s", st)
	}
	var dbg DebugInfo
	apiCall(t, http.MethodGet, base+"/debug/emulator", "", nil, &dbg)
	if dbg.Rescheduled != 2 {
		t.Errorf("/debug/emulator rescheduled %d, want 2", dbg.Rescheduled)
	}
	if n := strings.Count(srv.stdout.String(), "Rescheduling model instance"); n != 2 {
		t.Errorf("%d rescheduling lines, want 2:\n%s", n, srv.stdout)
	}

	// Recreated on the same data dir, without --worker-name: same worker.
	a2 := startWorker(t, "v2.2.3", dirA, base, map[string]string{"GPUSTACK_TOKEN": testClusterToken})
	serving(t, a2, "worker a again")
	waitFor(t, 10*time.Second, "worker-a READY again", func() bool {
		w := listWorkers(t, base)
		return len(w) == 2 && w["worker-a"].State == stateReady
	}, func() string { return srv.stdout.String() + a2.stdout.String() })
	if id := listWorkers(t, base)["worker-a"].ID; id != idA {
		t.Errorf("worker-a came back as id %d, was %d", id, idA)
	}
	uuid, err := os.ReadFile(filepath.Join(dirA, WorkerUUIDFile))
	if err != nil || listWorkers(t, base)["worker-a"].WorkerUUID != string(uuid) {
		t.Errorf("worker_uuid file %q (%v) vs %+v", uuid, err, listWorkers(t, base)["worker-a"])
	}

	// Maintenance off: b (stopped) becomes NOT_READY.
	apiCall(t, http.MethodPut, fmt.Sprintf("%s/v2/workers/%d", base, idB), testAdminKey,
		map[string]any{"maintenance": map[string]any{"enabled": false}}, nil)
	waitFor(t, 10*time.Second, "worker-b NOT_READY", func() bool { return listWorkers(t, base)["worker-b"].State == stateNotReady }, logs)
}

// TestWorkerTokens: without a token a worker fails as #5714; with a wrong
// one it logs the refusal and keeps trying.
func TestWorkerTokens(t *testing.T) {
	t.Parallel()
	dir, env := pgTestDir(t)
	srv := v2Run(t, "v2.2.3", dir, env, map[string]string{"GPUSTACK_TOKEN": testClusterToken, EnvAdminAPIKey: testAdminKey})
	serving(t, srv, "v2.2.3")
	base := "http://127.0.0.1:" + srv.port

	none := startWorker(t, "v2.2.3", t.TempDir(), base, nil)
	if none.port != "" || none.code != 1 {
		t.Errorf("worker without a token: port %q exit %d", none.port, none.code)
	}
	if !strings.Contains(none.stdout.String(), "'NoneType' object has no attribute 'create_async'") {
		t.Errorf("no #5714 line:\n%s", none.stdout)
	}

	wrong := startWorker(t, "v2.2.3", t.TempDir(), base, map[string]string{"GPUSTACK_TOKEN": "nope", "GPUSTACK_WORKER_NAME": "w"})
	serving(t, wrong, "worker with a wrong token")
	waitFor(t, 5*time.Second, "two refused registrations", func() bool {
		return strings.Count(wrong.stdout.String(), "Failed to register worker: POST /v2/emulator/workers/register: 401 Unauthorized: Invalid token") >= 2
	}, wrong.stdout.String)
	if n := len(listWorkers(t, base)); n != 0 {
		t.Errorf("%d workers registered with a wrong token", n)
	}
}

func TestClusterKnobs(t *testing.T) {
	env := map[string]string{EnvHeartbeatGrace: "2.5", EnvRescheduleGrace: "10s", EnvHeartbeatInterval: "1s"}
	k, err := clusterKnobsFromEnv(func(s string) string { return env[s] })
	if err != nil || k.heartbeatGrace != 2500*time.Millisecond || k.rescheduleGrace != 10*time.Second || k.heartbeatInterval != time.Second {
		t.Errorf("knobs %+v, %v", k, err)
	}
	k, err = clusterKnobsFromEnv(func(string) string { return "" })
	if err != nil || k.heartbeatGrace != 150*time.Second || k.rescheduleGrace != 300*time.Second || k.heartbeatInterval != 30*time.Second {
		t.Errorf("defaults %+v, %v", k, err)
	}
	if _, err := clusterKnobsFromEnv(func(s string) string {
		if s == EnvHeartbeatGrace {
			return "soon"
		}
		return ""
	}); err == nil {
		t.Error("bad grace accepted")
	}
}

// TestClusterMySQL: registration, heartbeats, maintenance and the grace
// periods on an external MySQL (MariaDB): DATETIME read without parseTime,
// maintenance in a LONGTEXT JSON column.
func TestClusterMySQL(t *testing.T) {
	t.Parallel()
	url := externalMySQL(t)
	srv := startRun(t, "v2.2.3", t.TempDir(), map[string]string{
		EnvDatabaseURL: url, "GPUSTACK_TOKEN": testClusterToken, EnvAdminAPIKey: testAdminKey,
		EnvHeartbeatGrace: "0.5", EnvRescheduleGrace: "0.5",
	})
	serving(t, srv, "v2.2.3 on MySQL")
	base := "http://127.0.0.1:" + srv.port
	a := startWorker(t, "v2.2.3", t.TempDir(), base, map[string]string{"GPUSTACK_TOKEN": testClusterToken, "GPUSTACK_WORKER_NAME": "m-a"})
	serving(t, a, "worker m-a")
	b := startWorker(t, "v2.2.3", t.TempDir(), base, map[string]string{"GPUSTACK_TOKEN": testClusterToken, "GPUSTACK_WORKER_NAME": "m-b"})
	serving(t, b, "worker m-b")
	logs := func() string { return srv.stdout.String() + a.stdout.String() + b.stdout.String() }
	var ws map[string]Worker
	waitFor(t, 10*time.Second, "two READY workers", func() bool {
		ws = listWorkers(t, base)
		return len(ws) == 2 && ws["m-a"].State == stateReady && ws["m-b"].State == stateReady && ws["m-a"].HeartbeatTime != ""
	}, logs)
	first := ws["m-a"].HeartbeatTime
	waitFor(t, 5*time.Second, "a heartbeat", func() bool { return listWorkers(t, base)["m-a"].HeartbeatTime != first }, logs)
	var counts map[string]int
	extCmd(t, url, &counts, "seed", "--models", "1", "--instances", "2", "--worker", "m-a")
	extCmd(t, url, &counts, "seed", "--instances", "1", "--worker", "m-b")
	var got Worker
	if code := apiCall(t, http.MethodPut, fmt.Sprintf("%s/v2/workers/%d", base, ws["m-b"].ID), testAdminKey,
		map[string]any{"maintenance": map[string]any{"enabled": true, "message": "m"}}, &got); code != 200 || got.State != stateMaintenance {
		t.Fatalf("PUT maintenance: %d %+v", code, got)
	}
	a.stop()
	b.stop()
	waitFor(t, 10*time.Second, "m-a's instances deleted", func() bool {
		extCmd(t, url, &counts, "rows")
		return counts["model_instances"] == 1
	}, logs)
	time.Sleep(time.Second)
	extCmd(t, url, &counts, "rows")
	ws = listWorkers(t, base)
	if counts["model_instances"] != 1 || ws["m-a"].State != stateNotReady || ws["m-b"].State != stateMaintenance {
		t.Errorf("after the graces: %v %+v", counts, ws)
	}
}
