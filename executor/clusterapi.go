package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// httpCluster calls a server's API with an admin API key (Bearer).
type httpCluster struct {
	base   string
	key    string
	client *http.Client
}

// NewClusterAPI returns the API of the server at base (the URL its
// workers register with), called with the admin API key key.
func NewClusterAPI(base, key string) ClusterAPI {
	return &httpCluster{base: strings.TrimRight(base, "/"), key: key, client: &http.Client{Timeout: 15 * time.Second}}
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
var errAPIKey = errors.New("the server refused the API key (api_key): use an admin API key of this server")

func (c *httpCluster) call(ctx context.Context, method, path string, body, out any) (int, error) {
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
	req.Header.Set("Authorization", "Bearer "+c.key)
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
