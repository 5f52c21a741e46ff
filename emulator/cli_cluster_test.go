package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// emulatorOut runs a `gpustack emulator …` subcommand with getenv and
// returns its exit code, stdout and stderr.
func emulatorOut(getenv func(string) string, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	code := Main(context.Background(), append([]string{"emulator"}, args...), getenv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// workersOf runs `gpustack emulator workers --data-dir dir` and returns
// its rows by name, with the raw output.
func workersOf(t *testing.T, dir string) (map[string]map[string]any, string) {
	t.Helper()
	code, out, errOut := emulatorOut(nil, "workers", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("emulator workers: exit %d: %s", code, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("emulator workers: %v: %s", err, out)
	}
	byName := map[string]map[string]any{}
	for _, r := range rows {
		name, _ := r["name"].(string)
		byName[name] = r
	}
	return byName, out
}

// debugOf runs `gpustack emulator debug --port port`.
func debugOf(t *testing.T, port string) DebugInfo {
	t.Helper()
	code, out, errOut := emulatorOut(nil, "debug", "--port", port)
	if code != 0 {
		t.Fatalf("emulator debug --port %s: exit %d: %s", port, code, errOut)
	}
	var d DebugInfo
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("emulator debug: %v: %s", err, out)
	}
	return d
}

// TestEmulatorWorkersPostgres: `emulator workers` on the embedded
// PostgreSQL follows registration, heartbeats and maintenance as the admin
// API reports them; `emulator debug` reads the server's reschedule count.
func TestEmulatorWorkersPostgres(t *testing.T) {
	t.Parallel()
	dir, env := pgTestDir(t)
	srv := v2Run(t, "v2.2.3", dir, env, map[string]string{
		"GPUSTACK_TOKEN": testClusterToken, EnvAdminAPIKey: testAdminKey,
		EnvHeartbeatGrace: "1", EnvRescheduleGrace: "1",
	})
	serving(t, srv, "v2.2.3")
	base := "http://127.0.0.1:" + srv.port

	if _, raw := workersOf(t, dir); strings.TrimSpace(raw) != "[]" {
		t.Errorf("workers before any registered: %q, want []", raw)
	}
	if d := debugOf(t, srv.port); d.Version != "v2.2.3" || d.Release != "v2.2.3" || d.Rescheduled != 0 || d.DataDir != dir {
		t.Errorf("debug of a fresh server: %+v", d)
	}

	wdir := t.TempDir()
	w := startWorker(t, "v2.2.3", wdir, base, map[string]string{"GPUSTACK_TOKEN": testClusterToken, "GPUSTACK_WORKER_NAME": "cli-a"})
	serving(t, w, "worker cli-a")
	logs := func() string { return srv.stdout.String() + w.stdout.String() }
	var rows map[string]map[string]any
	waitFor(t, 10*time.Second, "cli-a READY in emulator workers", func() bool {
		rows, _ = workersOf(t, dir)
		return rows["cli-a"]["state"] == stateReady
	}, logs)
	row := rows["cli-a"]
	uuid, err := os.ReadFile(filepath.Join(wdir, WorkerUUIDFile))
	if err != nil {
		t.Fatal(err)
	}
	api := listWorkers(t, base)["cli-a"]
	if row["id"] != float64(api.ID) || row["worker_uuid"] != string(uuid) || row["worker_version"] != "v2.2.3" {
		t.Errorf("emulator workers: %v; want id %d, worker_uuid %s, worker_version v2.2.3", row, api.ID, uuid)
	}
	if m, ok := row["maintenance"].(map[string]any); !ok || m["enabled"] != false {
		t.Errorf("maintenance of a new worker: %#v, want {enabled: false}", row["maintenance"])
	}
	beat, _ := row["heartbeat_time"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05.000000", beat); err != nil {
		t.Errorf("heartbeat_time %q: %v", beat, err)
	}
	if len(row) != len(workerColumns) {
		t.Errorf("keys %v, want %v", row, workerColumns)
	}
	waitFor(t, 5*time.Second, "a heartbeat in emulator workers", func() bool {
		rows, _ = workersOf(t, dir)
		return rows["cli-a"]["heartbeat_time"] != beat
	}, logs)

	// Maintenance set through the admin API shows in the table.
	if code := apiCall(t, http.MethodPut, fmt.Sprintf("%s/v2/workers/%d", base, api.ID), testAdminKey,
		map[string]any{"maintenance": map[string]any{"enabled": true, "message": "cli"}}, nil); code != http.StatusOK {
		t.Fatalf("PUT maintenance: %d", code)
	}
	rows, _ = workersOf(t, dir)
	if m, _ := rows["cli-a"]["maintenance"].(map[string]any); rows["cli-a"]["state"] != stateMaintenance || m["enabled"] != true || m["message"] != "cli" {
		t.Errorf("after PUT maintenance: %v", rows["cli-a"])
	}
	if code := apiCall(t, http.MethodPut, fmt.Sprintf("%s/v2/workers/%d", base, api.ID), testAdminKey,
		map[string]any{"maintenance": map[string]any{"enabled": false}}, nil); code != http.StatusOK {
		t.Fatalf("PUT maintenance off: %d", code)
	}

	// The worker stops: NOT_READY after the grace, then its two instances
	// are rescheduled, which debug counts.
	emulatorCmd(t, dir, nil, "seed", "--models", "1", "--instances", "2", "--worker", "cli-a")
	w.stop()
	waitFor(t, 10*time.Second, "cli-a NOT_READY in emulator workers", func() bool {
		rows, _ = workersOf(t, dir)
		return rows["cli-a"]["state"] == stateNotReady
	}, logs)
	waitFor(t, 10*time.Second, "debug to count 2 rescheduled instances", func() bool { return debugOf(t, srv.port).Rescheduled == 2 }, logs)
	if n := instancesOn(t, dir, api.ID); n != 0 {
		t.Errorf("%d instances left on the stopped worker", n)
	}
}

// TestEmulatorWorkersSQLite: v0.6.0's workers table has no worker_uuid,
// worker_version nor maintenance, and they are not printed; a NULL
// heartbeat is null.
func TestEmulatorWorkersSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustServe(t, "v0.6.0", dir, nil)
	if _, raw := workersOf(t, dir); strings.TrimSpace(raw) != "[]" {
		t.Errorf("workers of a fresh database: %q, want []", raw)
	}
	for _, stmt := range []string{
		`INSERT INTO workers (created_at, updated_at, name, hostname, ip, state, heartbeat_time)
		VALUES ('2025-01-02 03:04:05', '2025-01-02 03:04:05', 'old-a', 'a', '10.0.0.1', 'READY', '2025-01-02 03:04:05.250000')`,
		`INSERT INTO workers (created_at, updated_at, name, hostname, ip, state)
		VALUES ('2025-01-02 03:04:05', '2025-01-02 03:04:05', 'old-b', 'b', '10.0.0.2', 'NOT_READY')`,
	} {
		emulatorCmd(t, dir, nil, "sql", stmt)
	}
	rows, raw := workersOf(t, dir)
	want := map[string]map[string]any{
		"old-a": {"id": float64(1), "name": "old-a", "state": "READY", "heartbeat_time": "2025-01-02T03:04:05.250000"},
		"old-b": {"id": float64(2), "name": "old-b", "state": "NOT_READY", "heartbeat_time": nil},
	}
	for name, w := range want {
		got := rows[name]
		if len(got) != len(w) {
			t.Errorf("%s: %v, want %v", name, got, w)
			continue
		}
		for k, v := range w {
			if gv, ok := got[k]; !ok || gv != v {
				t.Errorf("%s.%s = %#v, want %#v", name, k, gv, v)
			}
		}
	}
	if !strings.HasPrefix(raw, `[{"heartbeat_time":"2025-01-02T03:04:05.250000","id":1,`) {
		t.Errorf("not ordered by id: %s", raw)
	}
	if code, _, errOut := emulatorOut(nil, "workers", "--data-dir", dir, "extra"); code != 2 || !strings.Contains(errOut, "usage: gpustack emulator workers") {
		t.Errorf("workers with an argument: exit %d, %q", code, errOut)
	}
}

// TestEmulatorDebugAnswers: debug prints the body of a 200 answer as it
// is, and fails (exit 1, naming the URL) on any other answer or none.
func TestEmulatorDebugAnswers(t *testing.T) {
	t.Parallel()
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/emulator" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		fmt.Fprintln(w, `{"rescheduled": 3}`)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	code, out, errOut := emulatorOut(nil, "debug", "--port", port)
	if code != 0 || out != "{\"rescheduled\": 3}\n" {
		t.Errorf("debug: exit %d, %q, %q", code, out, errOut)
	}
	// $GPUSTACK_PORT stands in for --port.
	code, out, _ = emulatorOut(func(k string) string {
		if k == "GPUSTACK_PORT" {
			return port
		}
		return ""
	}, "debug")
	if code != 0 || !strings.Contains(out, `"rescheduled": 3`) {
		t.Errorf("debug with GPUSTACK_PORT: exit %d, %q", code, out)
	}
	status = http.StatusServiceUnavailable
	code, _, errOut = emulatorOut(nil, "debug", "--port", port)
	if code != 1 || !strings.Contains(errOut, "503 Service Unavailable") || !strings.Contains(errOut, "127.0.0.1:"+port+"/debug/emulator") {
		t.Errorf("debug on a 503: exit %d, %q", code, errOut)
	}
	srv.Close()
	code, _, errOut = emulatorOut(nil, "debug", "--port", port)
	if code != 1 || !strings.Contains(errOut, "connection refused") {
		t.Errorf("debug with nothing listening: exit %d, %q", code, errOut)
	}
	if code, _, _ := emulatorOut(nil, "debug", "--port", port, "extra"); code != 2 {
		t.Errorf("debug with an argument: exit %d, want 2", code)
	}
}

func TestServerPortOf(t *testing.T) {
	cmdline := func(s string) func() ([]byte, error) {
		return func() ([]byte, error) { return []byte(s), nil }
	}
	none := func() ([]byte, error) { return nil, errors.New("no /proc/1/cmdline") }
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GPUSTACK_PORT" {
				return v
			}
			return ""
		}
	}
	for _, tt := range []struct {
		name    string
		flag    int
		env     string
		cmdline func() ([]byte, error)
		want    int
		wantErr bool
	}{
		{"flag wins", 8080, "9090", cmdline("/usr/bin/gpustack\x00start\x00--port\x007070\x00"), 8080, false},
		{"env", 0, "9090", cmdline("/usr/bin/gpustack\x00start\x00--port\x007070\x00"), 9090, false},
		{"pid 1", 0, "", cmdline("/usr/bin/gpustack\x00start\x00--worker-port\x0010151\x00--port\x007070\x00"), 7070, false},
		{"pid 1 with =", 0, "", cmdline("/usr/bin/gpustack\x00start\x00--port=7071\x00"), 7071, false},
		{"--port before start is not gpustack's", 0, "", cmdline("wrapper\x00--port\x001\x00gpustack\x00start\x00"), 80, false},
		{"a worker's --worker-port is not the port", 0, "", cmdline("/usr/bin/gpustack\x00start\x00--worker-port\x0010151\x00"), 80, false},
		{"default", 0, "", none, 80, false},
		{"bad env", 0, "eighty", none, 0, true},
		{"bad pid 1", 0, "", cmdline("gpustack\x00start\x00--port\x0070000\x00"), 0, true},
	} {
		got, err := serverPortOf(tt.flag, env(tt.env), tt.cmdline)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: %d, %v; want %d, error %t", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestEmulatorWorkersMySQL: on an external MySQL (MariaDB) the same table
// reads the same: DATETIME without parseTime, maintenance in LONGTEXT.
func TestEmulatorWorkersMySQL(t *testing.T) {
	t.Parallel()
	url := externalMySQL(t)
	srv := startRun(t, "v2.2.3", t.TempDir(), map[string]string{
		EnvDatabaseURL: url, "GPUSTACK_TOKEN": testClusterToken, EnvAdminAPIKey: testAdminKey,
	})
	serving(t, srv, "v2.2.3 on MySQL")
	w := startWorker(t, "v2.2.3", t.TempDir(), "http://127.0.0.1:"+srv.port, map[string]string{"GPUSTACK_TOKEN": testClusterToken, "GPUSTACK_WORKER_NAME": "my-a"})
	serving(t, w, "worker my-a")
	env := map[string]string{EnvRelease: "v2.2.3", EnvDatabaseURL: url}
	var row map[string]any
	waitFor(t, 10*time.Second, "my-a READY in emulator workers", func() bool {
		code, out, errOut := emulatorOut(func(k string) string { return env[k] }, "workers", "--data-dir", t.TempDir())
		if code != 0 {
			t.Fatalf("emulator workers: exit %d: %s", code, errOut)
		}
		var rows []map[string]any
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) > 1 {
			t.Fatalf("emulator workers: %v: %s", err, out)
		}
		if len(rows) == 1 {
			row = rows[0]
		}
		return row["state"] == stateReady
	}, func() string { return srv.stdout.String() + w.stdout.String() })
	beat, _ := row["heartbeat_time"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05.000000", beat); err != nil {
		t.Errorf("heartbeat_time %q: %v", beat, err)
	}
	if m, ok := row["maintenance"].(map[string]any); !ok || m["enabled"] != false || row["name"] != "my-a" || row["worker_version"] != "v2.2.3" || row["id"] != float64(1) {
		t.Errorf("emulator workers on MySQL: %v", row)
	}
}
