package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultWorkerPort is the worker's API port (facts §6).
const DefaultWorkerPort = 10150

// Environment knobs of the cluster emulation.
const (
	EnvHeartbeatInterval = "GPUSTACK_EMULATOR_HEARTBEAT_INTERVAL"
	EnvAdminAPIKey       = "GPUSTACK_EMULATOR_ADMIN_API_KEY"
	EnvHeartbeatGrace    = "GPUSTACK_WORKER_HEARTBEAT_GRACE_PERIOD"
	EnvRescheduleGrace   = "GPUSTACK_MODEL_INSTANCE_RESCHEDULE_GRACE_PERIOD"
)

// Files of a worker's identity in its data dir.
const (
	WorkerUUIDFile = "worker_uuid"
	WorkerNameFile = "worker_name"
)

const logWorker = "gpustack.worker.worker"

// The emulator's own worker API on the server (not GPUStack's):
//
//	POST /v2/emulator/workers/register     body RegisterRequest, answer RegisterResponse
//	POST /v2/emulator/workers/{id}/heartbeat  body HeartbeatRequest, answer {"id": id}
//
// Both want "Authorization: Bearer <the server's registration token>".
const (
	registerPath  = "/v2/emulator/workers/register"
	heartbeatPath = "/v2/emulator/workers/%d/heartbeat"
)

// RegisterRequest is what a worker sends to register (or re-register).
type RegisterRequest struct {
	Name          string `json:"name"`
	UUID          string `json:"worker_uuid"`
	WorkerVersion string `json:"worker_version"`
	Port          int    `json:"port"`
}

// RegisterResponse is the server's answer: the worker's row id.
type RegisterResponse struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// HeartbeatRequest is a worker's heartbeat.
type HeartbeatRequest struct {
	WorkerVersion string `json:"worker_version"`
}

// clusterKnobs are the environment knobs of workers and the server's
// grace-period loop.
type clusterKnobs struct {
	heartbeatInterval time.Duration
	heartbeatGrace    time.Duration
	rescheduleGrace   time.Duration
	adminAPIKey       string
}

func clusterKnobsFromEnv(getenv func(string) string) (clusterKnobs, error) {
	k := clusterKnobs{
		heartbeatInterval: 30 * time.Second,
		heartbeatGrace:    150 * time.Second,
		rescheduleGrace:   300 * time.Second,
		adminAPIKey:       getenv(EnvAdminAPIKey),
	}
	for env, dst := range map[string]*time.Duration{
		EnvHeartbeatInterval: &k.heartbeatInterval, EnvHeartbeatGrace: &k.heartbeatGrace, EnvRescheduleGrace: &k.rescheduleGrace,
	} {
		v := getenv(env)
		if v == "" {
			continue
		}
		d, err := parseSeconds(v)
		if err != nil || d <= 0 {
			return k, fmt.Errorf("%s=%q: want seconds or a Go duration", env, v)
		}
		*dst = d
	}
	return k, nil
}

// parseSeconds reads "150" or "1.5" as seconds, else a Go duration.
func parseSeconds(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("parse %q: %w", v, err)
	}
	return d, nil
}

// worker is `gpustack start --server-url URL`: no database, an identity in
// the data dir, registration and heartbeats over HTTP.
type worker struct {
	id    identity
	opts  startOptions
	knobs clusterKnobs
	// healthFail is GPUSTACK_EMULATOR_HEALTH=fail: the worker registers
	// and sends heartbeats, but its /healthz answers 503.
	healthFail bool
	log        *logger
	client     *http.Client
	uuid       string
	name       string
	rowID      int64
	mu         sync.Mutex
}

// runWorker runs the worker role until ctx ends. A missing token fails as
// #5714 does; a refused token is logged and retried.
func runWorker(ctx context.Context, id identity, opts startOptions, f faults, lg *logger) int {
	lg.log(logStart, levelInfo, "GPUStack version: %s (%s)", id.release.Version(), id.commit)
	if f.startupDelay > 0 {
		// A slow start (GPU runtime detection, say): nothing listens and
		// no heartbeat is sent meanwhile.
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(f.startupDelay):
		}
	}
	w := &worker{id: id, opts: opts, knobs: f.cluster, healthFail: f.healthFail, log: lg, client: &http.Client{Timeout: 10 * time.Second}}
	if err := w.loadIdentity(); err != nil {
		lg.log(logStart, levelError, "Error running worker: %v", err)
		return 1
	}
	if opts.token == "" {
		// The client is built from the token; without one it is None (#5714).
		lg.log(logWorker, levelError, "Failed to register worker: 'NoneType' object has no attribute 'create_async'")
		lg.log(logStart, levelError, "Error running worker: 'NoneType' object has no attribute 'create_async'")
		return 1
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", opts.workerPort))
	if err != nil {
		lg.log(logUvicorn, levelError, "[Errno 98] error while attempting to bind on address ('0.0.0.0', %d): address already in use", opts.workerPort)
		return 1
	}
	hs := &http.Server{Handler: w.routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	lg.log(logUvicorn, levelInfo, "Uvicorn running on http://0.0.0.0:%d (Press CTRL+C to quit)", ln.Addr().(*net.TCPAddr).Port)
	lg.log(logWorker, levelInfo, "Worker %s (%s) connecting to %s.", w.name, w.uuid, opts.serverURL)

	loopDone := make(chan struct{})
	go func() { defer close(loopDone); w.loop(ctx) }()
	code := 0
	select {
	case <-ctx.Done():
		lg.log(logUvicorn, levelInfo, "Shutting down")
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			lg.log(logUvicorn, levelError, "%v", err)
		}
		code = 1
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(shutdownCtx)
	<-loopDone
	return code
}

// loadIdentity reads worker_uuid and worker_name from the data dir, or
// writes them: a recreated container on the same volume is the same worker.
func (w *worker) loadIdentity() error {
	dir := w.opts.dataDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("read %s: %w", name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	var err error
	if w.uuid, err = read(WorkerUUIDFile); err != nil {
		return err
	}
	if w.uuid == "" {
		h, err := randomHex(16)
		if err != nil {
			return err
		}
		w.uuid = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
		if err := os.WriteFile(filepath.Join(dir, WorkerUUIDFile), []byte(w.uuid), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", WorkerUUIDFile, err)
		}
	}
	saved, err := read(WorkerNameFile)
	if err != nil {
		return err
	}
	w.name = w.opts.workerName
	if w.name == "" {
		w.name = saved
	}
	if w.name == "" {
		if w.name, err = os.Hostname(); err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
	}
	if w.name != saved {
		if err := os.WriteFile(filepath.Join(dir, WorkerNameFile), []byte(w.name), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", WorkerNameFile, err)
		}
	}
	return nil
}

// WorkerDebugInfo is the body of a worker's GET /debug/emulator.
type WorkerDebugInfo struct {
	Role       string `json:"role"`
	Version    string `json:"version"`
	Name       string `json:"name"`
	UUID       string `json:"worker_uuid"`
	ID         int64  `json:"id"`
	ServerURL  string `json:"server_url"`
	Registered bool   `json:"registered"`
}

func (w *worker) routes() http.Handler {
	mux := http.NewServeMux()
	probe := func(rw http.ResponseWriter, _ *http.Request) {
		if w.healthFail {
			writeJSON(rw, http.StatusServiceUnavailable, map[string]string{"detail": "emulated health failure"})
			return
		}
		writeJSON(rw, http.StatusOK, "ok")
	}
	mux.HandleFunc("GET /healthz", probe)
	mux.HandleFunc("GET /readyz", probe)
	mux.HandleFunc("GET /version", func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, http.StatusOK, VersionInfo{Version: w.id.release.Version(), GitCommit: w.id.commit})
	})
	mux.HandleFunc("GET /debug/emulator", func(rw http.ResponseWriter, _ *http.Request) {
		w.mu.Lock()
		id := w.rowID
		w.mu.Unlock()
		writeJSON(rw, http.StatusOK, WorkerDebugInfo{
			Role: "worker", Version: w.id.release.Version(), Name: w.name, UUID: w.uuid,
			ID: id, ServerURL: w.opts.serverURL, Registered: id != 0,
		})
	})
	return mux
}

// loop registers, then sends heartbeats every interval; a refused
// registration is retried at the same pace, a heartbeat for a worker the
// server no longer knows registers again.
func (w *worker) loop(ctx context.Context) {
	checked := false
	for {
		if !checked && w.id.release.atLeast(2, 2, 0) {
			checked = w.checkVersion(ctx)
		}
		w.mu.Lock()
		id := w.rowID
		w.mu.Unlock()
		if id == 0 {
			if err := w.register(ctx); err != nil && ctx.Err() == nil {
				w.log.log(logWorker, levelError, "Failed to register worker: %v", err)
			}
		} else if err := w.heartbeat(ctx, id); err != nil && ctx.Err() == nil {
			w.log.log(logWorker, levelWarning, "Failed to send heartbeat: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.knobs.heartbeatInterval):
		}
	}
}

// checkVersion compares the server's /version with the worker's, as
// v2.2.0+ does (an exact string match; 0.0.0 is a dev build). It reports
// whether the check ran.
func (w *worker) checkVersion(ctx context.Context) bool {
	var v VersionInfo
	if _, err := w.call(ctx, http.MethodGet, "/version", nil, &v); err != nil {
		return false
	}
	mine := w.id.release.Version()
	if v.Version != mine && v.Version != "0.0.0" && mine != "0.0.0" {
		w.log.log(logWorker, levelWarning, "Version mismatch detected: worker version %s, server version %s. Please upgrade your worker to match the server version.", mine, v.Version)
	}
	return true
}

func (w *worker) register(ctx context.Context) error {
	var resp RegisterResponse
	if _, err := w.call(ctx, http.MethodPost, registerPath, RegisterRequest{
		Name: w.name, UUID: w.uuid, WorkerVersion: w.id.release.Version(), Port: w.opts.workerPort,
	}, &resp); err != nil {
		return err
	}
	w.mu.Lock()
	w.rowID = resp.ID
	w.mu.Unlock()
	w.log.log(logWorker, levelInfo, "Worker %s registered with id %d.", w.name, resp.ID)
	return nil
}

func (w *worker) heartbeat(ctx context.Context, id int64) error {
	status, err := w.call(ctx, http.MethodPost, fmt.Sprintf(heartbeatPath, id), HeartbeatRequest{WorkerVersion: w.id.release.Version()}, nil)
	if status == http.StatusNotFound {
		w.mu.Lock()
		w.rowID = 0
		w.mu.Unlock()
	}
	return err
}

// call sends JSON with the token and decodes the answer into out.
func (w *worker) call(ctx context.Context, method, path string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("encode: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.opts.serverURL+path, r)
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+w.opts.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var detail struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(data, &detail)
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, detail.Detail)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
