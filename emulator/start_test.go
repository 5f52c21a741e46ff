package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDevMainStampsPartialRevision(t *testing.T) {
	dir := t.TempDir()
	mustServe(t, "v0.5.1", dir, nil)
	mustFail(t, "main", dir, nil,
		"gpustack.cmd.start - ERROR - Error running server: (sqlite3.OperationalError) no such column: model_instances.resolved_path")
	if got := stamped(t, dir); got != "c45e397531d1" {
		t.Errorf("stamped %s, want c45e397531d1", got)
	}
	if !hasColumn(t, dir, "models", "env") || hasColumn(t, dir, "model_instances", "resolved_path") {
		t.Errorf("want models.env only: models=%v", columnsOf(t, dir, "models"))
	}
	// #1900: the released v0.6.0 sees the database at its head and dies too.
	mustFail(t, "v0.6.0", dir, nil, "Error running server: (sqlite3.OperationalError) no such column: model_instances.resolved_path")
	mustFail(t, "v0.7.1", dir, nil, "Error running server: (sqlite3.OperationalError) no such column: model_instances.resolved_path")
}

func TestDevMainFreshReportsVersionZero(t *testing.T) {
	var out bytes.Buffer
	getenv := func(k string) string { return map[string]string{EnvRelease: "main"}[k] }
	if code := Main(context.Background(), []string{"version"}, getenv, &out, io.Discard); code != 0 || out.String() != "v0.0.0 (e3b0c44)\n" {
		t.Errorf("version: %d %q", code, out.String())
	}
	mustFail(t, "main", t.TempDir(), nil, "no such column: model_instances.resolved_path")
}

func TestDevRevision(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{EnvDevRevision: "a7c1b20f9d3e"}
	mustServe(t, "main", dir, env)
	if got := stamped(t, dir); got != "a7c1b20f9d3e" {
		t.Fatalf("stamped %s", got)
	}
	checkMarkers(t, dir, "e6bf9e067296")
	mustServe(t, "main", dir, env) // a restart of the same image is fine
	mustFail(t, "v0.6.0", dir, nil, "Can't locate revision identified by 'a7c1b20f9d3e'")
}

func TestNullDistributedServersBreaksV070Only(t *testing.T) {
	dir := t.TempDir()
	mustServe(t, "v0.6.2", dir, nil)
	emulatorCmd(t, dir, nil, "seed", "--models", "1", "--instances", "1")
	emulatorCmd(t, dir, nil, "sql", "UPDATE model_instances SET distributed_servers = 'null'")
	mustFail(t, "v0.7.0", dir, nil, "Error running server: Database migration failed: 'NoneType' object has no attribute 'get'")
	if got := stamped(t, dir); got != "c45e397531d1" {
		t.Errorf("failed revision stamped: %s", got)
	}
	mustServe(t, "v0.7.1", dir, nil)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCacheMoveOfC45(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	mustServe(t, "v0.5.1", dir, nil, "--cache-dir", cache)
	hf := filepath.Join(cache, "huggingface", "models--Qwen--Qwen2-0.5B")
	writeFile(t, filepath.Join(hf, "blobs", "abc"), "weights")
	writeFile(t, filepath.Join(hf, "snapshots", "aaa", "config.json"), "{}")
	if err := os.Symlink("../../blobs/abc", filepath.Join(hf, "snapshots", "aaa", "model.gguf")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(hf, "snapshots", "bbb", "other"), "x")
	writeFile(t, filepath.Join(cache, "model_scope", "qwen", "Qwen2.lock"), "")
	writeFile(t, filepath.Join(cache, "model_scope", "qwen", "Qwen2", "model.gguf"), "ms")
	writeFile(t, filepath.Join(cache, "ollama", "llama3.lock"), "")

	log := mustServe(t, "v0.6.0", dir, map[string]string{EnvGitCommit: "0123456789abcdef"}, "--cache-dir", cache)
	target := filepath.Join(cache, "huggingface", "Qwen", "Qwen2-0.5B")
	for name, want := range map[string]string{"config.json": "{}", "model.gguf": "weights"} {
		b, err := os.ReadFile(filepath.Join(target, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
	for _, gone := range []string{hf, filepath.Join(cache, "model_scope", "qwen", "Qwen2.lock"), filepath.Join(cache, "ollama", "llama3.lock")} {
		if _, err := os.Lstat(gone); !os.IsNotExist(err) {
			t.Errorf("%s still there", gone)
		}
	}
	want := "gpustack.emulator - INFO - Cache dir " + cache + ": 3 files, 11 bytes already present."
	if !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
	// Not applied again: a later start leaves a new hub-layout dir alone.
	writeFile(t, filepath.Join(cache, "huggingface", "models--a--b", "snapshots", "s", "f"), "y")
	mustServe(t, "v0.6.0", dir, nil, "--cache-dir", cache)
	if _, err := os.Stat(filepath.Join(cache, "huggingface", "models--a--b")); err != nil {
		t.Error("cache move ran on a start that did not apply c45e397531d1")
	}
}

func TestCacheDirFlagBefore032(t *testing.T) {
	var stderr bytes.Buffer
	getenv := func(k string) string { return map[string]string{EnvRelease: "0.3.1"}[k] }
	code := Main(context.Background(), []string{"start", "--cache-dir", "/x"}, getenv, io.Discard, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "gpustack: error: unrecognized arguments: --cache-dir /x") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
	// The env var of a flag that does not exist is ignored.
	dir := t.TempDir()
	mustServe(t, "0.3.1", dir, map[string]string{"GPUSTACK_CACHE_DIR": "/nonexistent/x"})
	if _, err := os.Stat(filepath.Join(dir, "cache")); err != nil {
		t.Error(err)
	}
}

func TestParseStartFlags(t *testing.T) {
	rel, _ := ParseRelease("v0.6.0")
	env := map[string]string{"GPUSTACK_PORT": "8080", "GPUSTACK_DATA_DIR": "/env", "GPUSTACK_DEBUG": "true"}
	opts, err := parseStartFlags([]string{"--worker-ip", "1.2.3.4", "--enable-ray", "--data-dir=/d", "--token", "tok", "--bootstrap-password", "pw", "--disable-worker"},
		func(k string) string { return env[k] }, rel)
	if err != nil {
		t.Fatal(err)
	}
	want := startOptions{dataDir: "/d", cacheDir: "/d/cache", port: 8080, debug: true, bootstrapPassword: "pw", token: "tok", disableWorker: true,
		logDir: "/d/log", dbPort: DefaultDBPort, workerPort: DefaultWorkerPort}
	if opts != want {
		t.Errorf("got %+v, want %+v", opts, want)
	}
	v2, _ := ParseRelease("v2.2.3")
	// The worker role's flags, CLI over env.
	env = map[string]string{"GPUSTACK_SERVER_URL": "http://env/", "GPUSTACK_WORKER_NAME": "env-name"}
	opts, err = parseStartFlags([]string{"-s", "http://10.0.0.2:80/", "--worker-port", "10250"}, func(k string) string { return env[k] }, v2)
	if err != nil || opts.serverURL != "http://10.0.0.2:80" || opts.workerPort != 10250 || opts.workerName != "env-name" {
		t.Errorf("worker flags: %+v, %v", opts, err)
	}
	if _, err := parseStartFlags([]string{"--worker-port", "x"}, func(string) string { return "" }, v2); err == nil {
		t.Error("--worker-port x accepted")
	}
	env = map[string]string{"GPUSTACK_DATABASE_PORT": "15432"}
	opts, err = parseStartFlags([]string{"--log-dir", "/logs"}, func(k string) string { return env[k] }, v2)
	if err != nil || opts.dbPort != 15432 || opts.logDir != "/logs" || opts.dataDir != DefaultDataDir {
		t.Errorf("v2: %+v %v", opts, err)
	}
	if _, err := parseStartFlags([]string{"--database-port", "x"}, func(string) string { return "" }, v2); err == nil {
		t.Error("--database-port x: no error")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestHTTPAndLiveSeed(t *testing.T) {
	dir := t.TempDir()
	r := startRun(t, "v0.7.1", dir, map[string]string{EnvGitCommit: "abcdef123"}, "--bootstrap-password", "secret")
	base := "http://127.0.0.1:" + r.port
	if code, body := get(t, base+"/healthz"); code != 200 || body != `"ok"` {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || body != `"ok"` {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, body := get(t, base+"/version"); code != 200 || body != `{"version":"v0.7.1","git_commit":"abcdef1"}` {
		t.Errorf("/version: %d %s", code, body)
	}
	var info DebugInfo
	_, body := get(t, base+"/debug/emulator")
	if err := json.Unmarshal([]byte(body), &info); err != nil || info.Revision != "d19176de3b74" || info.Release != "v0.7.1" || info.DataDir != dir {
		t.Errorf("/debug/emulator: %s %v", body, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "initial_admin_password")); !os.IsNotExist(err) {
		t.Error("initial_admin_password written despite --bootstrap-password")
	}
	// The server holds the database open (WAL) while tests seed it.
	emulatorCmd(t, dir, nil, "seed", "--models", "3", "--instances", "5", "--users", "2")
	got := rows(t, dir)
	if got["models"] != 3 || got["model_instances"] != 5 || got["users"] != 3 || got["alembic_version"] != 1 {
		t.Errorf("rows: %v", got)
	}
	if code := r.stop(); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "database.db-wal")); err == nil {
		if fi, _ := os.Stat(filepath.Join(dir, "database.db-wal")); fi.Size() != 0 {
			t.Errorf("WAL not checkpointed on shutdown: %d bytes", fi.Size())
		}
	}
}

func TestHealthFailAndCrash(t *testing.T) {
	r := startRun(t, "v0.5.1", t.TempDir(), map[string]string{EnvHealth: "fail"})
	if code, _ := get(t, "http://127.0.0.1:"+r.port+"/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz: %d, want 503", code)
	}
	start := time.Now()
	r = startRun(t, "v0.5.1", t.TempDir(), map[string]string{EnvExitAfter: "200ms", EnvStartupDelay: "100ms"})
	select {
	case code := <-r.done:
		r.done = nil
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no crash")
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("crashed after %s, before delay+exit-after", d)
	}
}

func TestReleaseForTag(t *testing.T) {
	cases := map[string]string{
		"v0.5.1-cpu": "v0.5.1", "0.3.0": "0.3.0", "main-cpu": "main", "main": "main",
		"v0.6.0-cuda12.8": "v0.6.0", "v0.7-npu": "v0.7.1", "v0.7.0rc1": "v0.7.0rc1",
		"v2.0.0": "v2.0.0", "v2.2.3": "v2.2.3", "v2.1": "v2.1.2", "v2.2.0rc2": "v2.2.0rc2",
	}
	for tag, want := range cases {
		rel, err := ReleaseForTag(tag)
		if err != nil || rel.Name != want {
			t.Errorf("%s: %v %v, want %s", tag, rel.Name, err, want)
		}
	}
	for _, bad := range []string{"latest", "latest-cpu", "v2.0.0-cpu", "v2.2.4", "2.0.0", "v1.0.0", "v0.7.2", "0.1.0rc1", "dev"} {
		if _, err := ReleaseForTag(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
