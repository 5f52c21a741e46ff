package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClusterAPI is what a worker's rollout needs from its server's API
// (GPUStack v2: GET /v2/workers, PUT /v2/workers/{id}).
type ClusterAPI interface {
	// Worker returns the worker the server lists under name, or nil.
	Worker(ctx context.Context, name string) (*APIWorker, error)
	// SetMaintenance turns maintenance mode of worker id on or off.
	SetMaintenance(ctx context.Context, id int64, enabled bool, message string) error
}

// APIWorker is a worker as its server lists it.
type APIWorker struct {
	ID    int64
	Name  string
	State string
	// WorkerVersion is what the worker reports (v2.2+), "" before.
	WorkerVersion string
	Maintenance   bool
	// MaintenanceMessage is the message maintenance was enabled with.
	MaintenanceMessage string
}

// Worker states the rollout waits for.
const (
	WorkerReady       = "READY"
	WorkerMaintenance = "MAINTENANCE"
)

// MaintenancePrefix starts the message gpustack-deploy enables
// maintenance mode with, so that a later apply knows it set it.
const MaintenancePrefix = "gpustack-deploy: "

// httpCluster calls a server's API with an admin API key (Bearer), or
// with the session a login as its admin user gave (a cookie).
type httpCluster struct {
	base     string
	key      string
	password string
	client   *http.Client
	mu       sync.Mutex
	loggedIn bool
}

// AdminUser is the user gpustack-deploy logs in as with admin_password:
// the admin GPUStack creates at its first start.
const AdminUser = "admin"

// NewClusterAPI returns the API of the server at base (the URL its
// workers register with), called with the admin API key key or, without
// one, as the admin user with password.
func NewClusterAPI(base, key, password string) ClusterAPI {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &httpCluster{base: strings.TrimRight(base, "/"), key: key, password: password,
		client: &http.Client{Timeout: 15 * time.Second, Jar: jar}}
}

// login posts the admin's credentials to /auth/login; the session cookie
// it sets is kept in the client's jar.
func (c *httpCluster) login(ctx context.Context) error {
	form := url.Values{"username": {AdminUser}, "password": {c.password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/auth/login", strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("server API login: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("server API login: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("server API login as %s: %s: %w", AdminUser, resp.Status, errAPIKey)
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("server API login as %s: %s", AdminUser, resp.Status)
	}
	c.loggedIn = true
	return nil
}

type apiWorkerJSON struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	State         string `json:"state"`
	WorkerVersion string `json:"worker_version"`
	Maintenance   *struct {
		Enabled bool   `json:"enabled"`
		Message string `json:"message"`
	} `json:"maintenance"`
}

func (w apiWorkerJSON) worker() *APIWorker {
	out := &APIWorker{ID: w.ID, Name: w.Name, State: w.State, WorkerVersion: w.WorkerVersion}
	if w.Maintenance != nil {
		out.Maintenance, out.MaintenanceMessage = w.Maintenance.Enabled, w.Maintenance.Message
	}
	return out
}

func (c *httpCluster) Worker(ctx context.Context, name string) (*APIWorker, error) {
	for page := 1; page <= 100; page++ {
		var list struct {
			Items      []apiWorkerJSON `json:"items"`
			Pagination struct {
				TotalPage int `json:"totalPage"`
			} `json:"pagination"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "perPage": {"100"}, "search": {name}}
		if _, err := c.call(ctx, http.MethodGet, "/v2/workers?"+q.Encode(), nil, &list); err != nil {
			return nil, err
		}
		for _, w := range list.Items {
			if w.Name == name {
				return w.worker(), nil
			}
		}
		if list.Pagination.TotalPage <= page {
			return nil, nil
		}
	}
	return nil, nil
}

// SetMaintenance reads the worker and writes it back with maintenance
// changed, so that a server which wants the whole object gets it.
func (c *httpCluster) SetMaintenance(ctx context.Context, id int64, enabled bool, message string) error {
	var w map[string]any
	path := "/v2/workers/" + strconv.FormatInt(id, 10)
	if _, err := c.call(ctx, http.MethodGet, path, nil, &w); err != nil {
		return err
	}
	m := map[string]any{"enabled": enabled}
	if enabled {
		m["message"] = message
	}
	w["maintenance"] = m
	_, err := c.call(ctx, http.MethodPut, path, w, nil)
	return err
}

// errAPIKey is a refused API key: retrying does not help.
var errAPIKey = errors.New("the server refused the credentials (api_key or admin_password): use an admin API key of this server, or its admin user's password")

func (c *httpCluster) call(ctx context.Context, method, path string, body, out any) (int, error) {
	if c.key == "" {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.loggedIn {
			if err := c.login(ctx); err != nil {
				return 0, err
			}
		}
		code, err := c.send(ctx, method, path, body, out)
		if errors.Is(err, errAPIKey) {
			// The session expired (the server restarted, say): once more.
			c.loggedIn = false
			if err := c.login(ctx); err != nil {
				return 0, err
			}
			return c.send(ctx, method, path, body, out)
		}
		return code, err
	}
	return c.send(ctx, method, path, body, out)
}

func (c *httpCluster) send(ctx context.Context, method, path string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		// The error names the URL, never the key.
		return 0, fmt.Errorf("server API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("server API %s %s: %w", method, path, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return resp.StatusCode, fmt.Errorf("server API %s %s: %s: %w", method, path, resp.Status, errAPIKey)
	case resp.StatusCode/100 != 2:
		return resp.StatusCode, fmt.Errorf("server API %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("server API %s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
