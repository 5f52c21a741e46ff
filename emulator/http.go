package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// DebugInfo is the body of GET /debug/emulator.
type DebugInfo struct {
	Release    string `json:"release"`
	Version    string `json:"version"`
	Revision   string `json:"revision"`
	DataDir    string `json:"data_dir"`
	CacheDir   string `json:"cache_dir"`
	CacheFiles int    `json:"cache_files"`
	CacheBytes int64  `json:"cache_bytes"`
	StartedAt  string `json:"started_at"`
	// Rescheduled counts the model instances deleted because their worker
	// stayed silent beyond both grace periods (v2).
	Rescheduled int `json:"rescheduled"`
}

// VersionInfo is the body of GET /version.
type VersionInfo struct {
	Version   string `json:"version"`
	GitCommit string `json:"git_commit"`
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	probe := func(w http.ResponseWriter, _ *http.Request) {
		if s.faults.healthFail {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"detail": "emulated health failure"})
			return
		}
		writeJSON(w, http.StatusOK, "ok")
	}
	mux.HandleFunc("GET /healthz", probe)
	mux.HandleFunc("GET /readyz", probe)
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, VersionInfo{Version: s.id.release.Version(), GitCommit: s.id.commit})
	})
	mux.HandleFunc("GET /debug/emulator", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, DebugInfo{
			Release:    s.id.release.Name,
			Version:    s.id.release.Version(),
			Revision:   s.revision,
			DataDir:    s.opts.dataDir,
			CacheDir:   s.opts.cacheDir,
			CacheFiles: s.cacheFiles,
			CacheBytes: s.cacheBytes,
			StartedAt:  s.startedAt.Format(time.RFC3339),

			Rescheduled: s.cluster.rescheduledCount(),
		})
	})
	if s.cluster != nil {
		s.cluster.routes(mux)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// serve runs the HTTP server until ctx ends (exit 0 after a clean close)
// or the emulated crash fires (exit 1).
func (s *server) serve(ctx context.Context) int {
	ln, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", s.opts.port))
	if err != nil {
		s.log.log(logUvicorn, levelError, "[Errno 98] error while attempting to bind on address ('0.0.0.0', %d): address already in use", s.opts.port)
		s.abort()
		return 1
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if s.id.release.V2() {
		c, err := newClusterState(ctx, s)
		if err != nil {
			s.log.log(logEmulator, levelError, "cluster: %v", err)
			ln.Close()
			s.abort()
			return 1
		}
		s.cluster = c
		go c.run(ctx)
	}
	hs := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.log(logUvicorn, levelInfo, "Started server process [%d]", 1)
	s.log.log(logUvicorn, levelInfo, "Application startup complete.")
	s.log.log(logUvicorn, levelInfo, "Uvicorn running on http://0.0.0.0:%d (Press CTRL+C to quit)", port)
	if s.listening != nil {
		s.listening <- ln.Addr().String()
	}
	if s.flushColumnGap {
		go s.flushUsage(ctx)
	}

	var crash <-chan time.Time
	if s.faults.exitAfter > 0 {
		t := time.NewTimer(s.faults.exitAfter)
		defer t.Stop()
		crash = t.C
	}
	select {
	case <-ctx.Done():
		s.log.log(logUvicorn, levelInfo, "Shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(shutdownCtx)
		if err := s.close(); err != nil {
			s.log.log(logEmulator, levelError, "%v", err)
			return 1
		}
		s.log.log(logUvicorn, levelInfo, "Finished server process [%d]", 1)
		return 0
	case <-crash:
		s.log.log(logEmulator, levelError, "Emulated crash %s after start-up.", s.faults.exitAfter)
		hs.Close()
		s.abort()
		return 1
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			s.log.log(logUvicorn, levelError, "%v", err)
		}
		s.abort()
		return 1
	}
}
