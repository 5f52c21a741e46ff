package executor

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// apiServer is a server's worker API with an API key and the admin's
// login; forget drops every session, as a restarted server does.
type apiServer struct {
	mu       sync.Mutex
	sessions map[string]bool
	logins   int
	maint    bool
	put      map[string]any
}

func (s *apiServer) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = map[string]bool{}
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path == "/auth/login" {
		if r.PostFormValue("username") != AdminUser || r.PostFormValue("password") != "pw" {
			http.Error(w, `{"detail":"Incorrect username or password"}`, http.StatusUnauthorized)
			return
		}
		s.logins++
		id := "s" + strings.Repeat("x", s.logins)
		s.sessions[id] = true
		http.SetCookie(w, &http.Cookie{Name: "gpustack_session", Value: id, Path: "/"})
		return
	}
	c, err := r.Cookie("gpustack_session")
	if r.Header.Get("Authorization") != "Bearer key" && (err != nil || !s.sessions[c.Value]) {
		http.Error(w, `{"detail":"Invalid authentication credentials"}`, http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v2/workers":
		_ = json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{
			"id": 7, "name": "w1", "state": "READY", "worker_version": "v2.2.3", "labels": map[string]string{"gpu": "a100"},
			"maintenance": map[string]any{"enabled": s.maint, "message": "m"}}}, "pagination": map[string]int{"totalPage": 1}})
	case r.Method == http.MethodGet && r.URL.Path == "/v2/workers/7":
		_ = json.NewEncoder(w).Encode(map[string]any{"id": 7, "name": "w1", "labels": map[string]string{"gpu": "a100"}})
	case r.Method == http.MethodPut && r.URL.Path == "/v2/workers/7":
		s.put = map[string]any{}
		_ = json.NewDecoder(r.Body).Decode(&s.put)
		s.maint = s.put["maintenance"].(map[string]any)["enabled"].(bool)
	default:
		http.NotFound(w, r)
	}
}

func TestClusterAPICredentials(t *testing.T) {
	s := &apiServer{sessions: map[string]bool{}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := context.Background()

	for _, tc := range []struct {
		name          string
		key, password string
		logins        int
	}{{"api key", "key", "", 0}, {"admin password", "", "pw", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.logins
			api := NewClusterAPI(srv.URL, tc.key, tc.password)
			w, err := api.Worker(ctx, "w1")
			if err != nil || w == nil || w.ID != 7 || w.State != WorkerReady || w.WorkerVersion != "v2.2.3" {
				t.Fatalf("Worker = %+v, %v", w, err)
			}
			if err := api.SetMaintenance(ctx, 7, true, MaintenancePrefix+"x"); err != nil {
				t.Fatal(err)
			}
			// The worker is written back whole, maintenance changed.
			if s.put["labels"] == nil || s.put["name"] != "w1" {
				t.Errorf("PUT body %v: the worker's other fields are lost", s.put)
			}
			if got, err := api.Worker(ctx, "w1"); err != nil || !got.Maintenance {
				t.Errorf("maintenance not on: %+v, %v", got, err)
			}
			if s.logins-before != tc.logins {
				t.Errorf("%d logins, want %d (one session for every call)", s.logins-before, tc.logins)
			}
		})
	}

	// A server that forgot the session is logged in to again, once.
	api := NewClusterAPI(srv.URL, "", "pw")
	if _, err := api.Worker(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	s.forget()
	before := s.logins
	if _, err := api.Worker(ctx, "w1"); err != nil || s.logins != before+1 {
		t.Errorf("after the server forgot the session: %v, %d new logins", err, s.logins-before)
	}

	// Wrong credentials say so, and name neither.
	for _, api := range []ClusterAPI{NewClusterAPI(srv.URL, "wrong-key", ""), NewClusterAPI(srv.URL, "", "wrong-pw")} {
		_, err := api.Worker(ctx, "w1")
		if !errors.Is(err, errAPIKey) || strings.Contains(err.Error(), "wrong") {
			t.Errorf("wrong credentials: %v", err)
		}
	}
}
