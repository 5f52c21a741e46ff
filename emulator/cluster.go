package emulator

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Worker states of workerstateenum.
const (
	stateReady       = "READY"
	stateNotReady    = "NOT_READY"
	stateMaintenance = "MAINTENANCE"
)

// Maintenance is workers.maintenance (433346ba0efd).
type Maintenance struct {
	Enabled bool   `json:"enabled"`
	Message string `json:"message,omitempty"`
}

// Worker is an item of GET /v2/workers.
type Worker struct {
	ID            int64        `json:"id"`
	Name          string       `json:"name"`
	State         string       `json:"state"`
	WorkerUUID    string       `json:"worker_uuid"`
	WorkerVersion string       `json:"worker_version,omitempty"`
	HeartbeatTime string       `json:"heartbeat_time,omitempty"`
	Maintenance   *Maintenance `json:"maintenance"`
}

// WorkerList is the body of GET /v2/workers.
type WorkerList struct {
	Items      []Worker       `json:"items"`
	Pagination map[string]int `json:"pagination"`
}

// WorkerUpdate is the body of PUT /v2/workers/{id}: only maintenance is
// acted on.
type WorkerUpdate struct {
	Maintenance *Maintenance `json:"maintenance"`
}

// clusterServer is the server side of the cluster: the registration token,
// the grace-period loop and its count of deleted (rescheduled) instances.
type clusterServer struct {
	s           *server
	token       string
	knobs       clusterKnobs
	hasVersion  bool // workers.worker_version (8bf38a6bb3b5)
	hasMaint    bool // workers.maintenance (433346ba0efd)
	mu          sync.Mutex
	rescheduled int
	sessions    sessions
}

func newClusterState(ctx context.Context, s *server) (*clusterServer, error) {
	c := &clusterServer{s: s, token: s.opts.token, knobs: s.faults.cluster}
	if c.token == "" {
		b, err := os.ReadFile(filepath.Join(s.opts.dataDir, "token"))
		if err != nil {
			return nil, fmt.Errorf("registration token: %w", err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	cols, err := pgColumns(ctx, s.db, "workers")
	if err != nil {
		return nil, err
	}
	for _, col := range cols {
		switch col.name {
		case "worker_version":
			c.hasVersion = true
		case "maintenance":
			c.hasMaint = true
		}
	}
	return c, nil
}

func (c *clusterServer) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+registerPath, c.withToken(c.register))
	mux.HandleFunc("POST /v2/emulator/workers/{id}/heartbeat", c.withToken(c.heartbeat))
	mux.HandleFunc("POST /auth/login", c.login)
	mux.HandleFunc("GET /v2/workers", c.withAdmin(c.list))
	mux.HandleFunc("GET /v2/workers/{id}", c.withAdmin(c.get))
	mux.HandleFunc("PUT /v2/workers/{id}", c.withAdmin(c.update))
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

func same(a, b string) bool { return b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (c *clusterServer) withToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !same(bearer(r), c.token) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Invalid token"})
			return
		}
		h(w, r)
	}
}

// withAdmin wants "Authorization: Bearer <GPUSTACK_EMULATOR_ADMIN_API_KEY>",
// as GPUStack takes API keys, or the session cookie of the admin's login.
func (c *clusterServer) withAdmin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !same(bearer(r), c.knobs.adminAPIKey) && !c.sessions.admin(r) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Invalid authentication credentials"})
			return
		}
		h(w, r)
	}
}

func (c *clusterServer) register(w http.ResponseWriter, r *http.Request) {
	var req RegisterRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name == "" || req.UUID == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"detail": "name and worker_uuid are required"})
		return
	}
	id, status, err := c.upsert(r.Context(), req)
	if err != nil {
		writeJSON(w, status, map[string]string{"detail": err.Error()})
		return
	}
	c.s.log.log(logServer, levelInfo, "Worker %s (%s, %s) registered with id %d.", req.Name, req.UUID, req.WorkerVersion, id)
	writeJSON(w, http.StatusOK, RegisterResponse{ID: id, Name: req.Name})
}

// upsert finds the worker by worker_uuid (a name taken by another uuid is
// a conflict) and marks it alive, or inserts it.
func (c *clusterServer) upsert(ctx context.Context, req RegisterRequest) (int64, int, error) {
	db := c.s.db
	var id int64
	var uuid string
	err := db.QueryRowContext(ctx, "SELECT id, worker_uuid FROM workers WHERE worker_uuid = "+placeholder(db, 1)+" OR name = "+placeholder(db, 2)+" ORDER BY id LIMIT 1",
		req.UUID, req.Name).Scan(&id, &uuid)
	now := time.Now().UTC()
	switch {
	case err == nil && uuid != req.UUID:
		return 0, http.StatusConflict, fmt.Errorf("worker name %s is already taken by another worker", req.Name)
	case err == nil:
		set := map[string]any{"name": req.Name, "heartbeat_time": now, "updated_at": now}
		if c.hasVersion {
			set["worker_version"] = req.WorkerVersion
		}
		if err := c.set(ctx, id, set); err != nil {
			return 0, http.StatusInternalServerError, err
		}
		return id, 0, c.refresh(ctx)
	default:
		over := map[string]any{"name": req.Name, "worker_uuid": req.UUID, "state": stateReady, "heartbeat_time": now,
			"hostname": req.Name, "port": req.Port}
		if c.hasVersion {
			over["worker_version"] = req.WorkerVersion
		}
		if c.hasMaint {
			over["maintenance"] = `{"enabled": false}`
		}
		id, err := pgInsertRow(ctx, db, "workers", 1, over)
		if err != nil {
			return 0, http.StatusInternalServerError, fmt.Errorf("register worker: %s", pyPGError(err))
		}
		return id, 0, nil
	}
}

// set updates columns of one worker.
func (c *clusterServer) set(ctx context.Context, id int64, cols map[string]any) error {
	db := c.s.db
	var parts []string
	var args []any
	for k, v := range cols {
		args = append(args, v)
		parts = append(parts, quoteIdentsFor(db, []string{k})+" = "+placeholder(db, len(args)))
	}
	args = append(args, id)
	q := fmt.Sprintf("UPDATE workers SET %s WHERE id = %s", strings.Join(parts, ", "), placeholder(db, len(args)))
	if _, err := db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("update worker %d: %s", id, pyPGError(err))
	}
	return nil
}

func (c *clusterServer) heartbeat(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Worker not found"})
		return
	}
	var req HeartbeatRequest
	json.NewDecoder(r.Body).Decode(&req)
	db := c.s.db
	set := "heartbeat_time = " + placeholder(db, 1)
	args := []any{time.Now().UTC()}
	if c.hasVersion && req.WorkerVersion != "" {
		args = append(args, req.WorkerVersion)
		set += ", worker_version = " + placeholder(db, 2)
	}
	args = append(args, id)
	res, err := db.ExecContext(r.Context(), "UPDATE workers SET "+set+" WHERE id = "+placeholder(db, len(args)), args...)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": pyPGError(err)})
		return
	}
	if n, _ := res.RowsAffected(); n == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Worker not found"})
		return
	}
	if err := c.refresh(r.Context()); err != nil {
		c.s.log.log(logServer, levelError, "%v", err)
	}
	writeJSON(w, http.StatusOK, map[string]int64{"id": id})
}

// workers reads every worker, or the one of id when id > 0.
func (c *clusterServer) workers(ctx context.Context, id int64) ([]Worker, []time.Time, error) {
	db := c.s.db
	cols := "id, name, state, worker_uuid, heartbeat_time"
	if c.hasVersion {
		cols += ", worker_version"
	} else {
		cols += ", NULL"
	}
	if c.hasMaint {
		cols += ", maintenance"
	} else {
		cols += ", NULL"
	}
	q := "SELECT " + cols + " FROM workers"
	var args []any
	if id > 0 {
		q += " WHERE id = " + placeholder(db, 1)
		args = append(args, id)
	}
	rows, err := db.QueryContext(ctx, q+" ORDER BY id", args...)
	if err != nil {
		return nil, nil, fmt.Errorf("list workers: %s", pyPGError(err))
	}
	defer rows.Close()
	var out []Worker
	var beats []time.Time
	for rows.Next() {
		var wk Worker
		var beat, version, maint any
		if err := rows.Scan(&wk.ID, &wk.Name, &wk.State, &wk.WorkerUUID, &beat, &version, &maint); err != nil {
			return nil, nil, fmt.Errorf("list workers: %w", err)
		}
		t := asTime(beat)
		if !t.IsZero() {
			wk.HeartbeatTime = t.Format("2006-01-02T15:04:05.000000")
		}
		wk.WorkerVersion = asString(version)
		if m := asString(maint); m != "" {
			var mt Maintenance
			if json.Unmarshal([]byte(m), &mt) == nil {
				wk.Maintenance = &mt
			}
		}
		out = append(out, wk)
		beats = append(beats, t)
	}
	return out, beats, rows.Err()
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

// asTime reads a timestamp scanned by lib/pq (time.Time) or by
// go-sql-driver/mysql without parseTime ([]byte); both are UTC.
func asTime(v any) time.Time {
	if t, ok := v.(time.Time); ok {
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	}
	if s := asString(v); s != "" {
		for _, layout := range []string{"2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999Z07:00"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC()
			}
		}
	}
	return time.Time{}
}

func (c *clusterServer) list(w http.ResponseWriter, r *http.Request) {
	items, _, err := c.workers(r.Context(), 0)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": err.Error()})
		return
	}
	if items == nil {
		items = []Worker{}
	}
	writeJSON(w, http.StatusOK, WorkerList{Items: items, Pagination: map[string]int{
		"page": 1, "perPage": len(items), "total": len(items), "totalPage": 1,
	}})
}

func (c *clusterServer) one(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil && id > 0 {
		items, _, err := c.workers(r.Context(), id)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": err.Error()})
			return 0, false
		}
		if len(items) == 1 {
			return id, true
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Worker not found"})
	return 0, false
}

func (c *clusterServer) get(w http.ResponseWriter, r *http.Request) {
	id, ok := c.one(w, r)
	if !ok {
		return
	}
	items, _, err := c.workers(r.Context(), id)
	if err != nil || len(items) != 1 {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": fmt.Sprint(err)})
		return
	}
	writeJSON(w, http.StatusOK, items[0])
}

func (c *clusterServer) update(w http.ResponseWriter, r *http.Request) {
	id, ok := c.one(w, r)
	if !ok {
		return
	}
	var req WorkerUpdate
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"detail": "invalid body: " + err.Error()})
		return
	}
	if req.Maintenance != nil {
		if !c.hasMaint {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"detail": "this release has no worker maintenance"})
			return
		}
		b, _ := json.Marshal(req.Maintenance)
		if err := c.set(r.Context(), id, map[string]any{"maintenance": string(b), "updated_at": time.Now().UTC()}); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": err.Error()})
			return
		}
		c.s.log.log(logServer, levelInfo, "Worker %d maintenance: enabled=%t %s", id, req.Maintenance.Enabled, req.Maintenance.Message)
		if err := c.refresh(r.Context()); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": err.Error()})
			return
		}
	}
	c.get(w, r)
}

// run applies the grace periods every tick until ctx ends.
func (c *clusterServer) run(ctx context.Context) {
	tick := time.Second
	if g := c.knobs.heartbeatGrace / 4; g < tick {
		tick = max(g, 100*time.Millisecond)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.refresh(ctx); err != nil && ctx.Err() == nil {
			c.s.log.log(logServer, levelError, "Worker status sync failed: %v", err)
		}
	}
}

// refresh sets each worker's state from its maintenance flag and its last
// heartbeat, and deletes the model instances of a worker silent for both
// grace periods unless it is in maintenance.
func (c *clusterServer) refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	items, beats, err := c.workers(ctx, 0)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	for i, wk := range items {
		silent := now.Sub(beats[i])
		want := stateReady
		inMaint := wk.Maintenance != nil && wk.Maintenance.Enabled
		switch {
		case inMaint:
			want = stateMaintenance
		case beats[i].IsZero() || silent > c.knobs.heartbeatGrace:
			want = stateNotReady
		}
		if want != wk.State {
			if err := c.set(ctx, wk.ID, map[string]any{"state": want}); err != nil {
				return err
			}
			if want == stateNotReady {
				c.s.log.log(logServer, levelWarning, "Worker %s is NOT_READY: no heartbeat for %s.", wk.Name, silent.Round(time.Second))
			} else {
				c.s.log.log(logServer, levelInfo, "Worker %s state %s -> %s.", wk.Name, wk.State, want)
			}
		}
		if inMaint || beats[i].IsZero() || silent <= c.knobs.heartbeatGrace+c.knobs.rescheduleGrace {
			continue
		}
		if err := c.reschedule(ctx, wk); err != nil {
			return err
		}
	}
	return nil
}

// reschedule deletes the instances of an unreachable worker, as the
// server does before its scheduler places them elsewhere.
func (c *clusterServer) reschedule(ctx context.Context, wk Worker) error {
	db := c.s.db
	rows, err := db.QueryContext(ctx, "SELECT id, name FROM model_instances WHERE worker_id = "+placeholder(db, 1)+" ORDER BY id", wk.ID)
	if err != nil {
		return fmt.Errorf("instances of worker %s: %s", wk.Name, pyPGError(err))
	}
	type inst struct {
		id   int64
		name string
	}
	var list []inst
	for rows.Next() {
		var in inst
		if err := rows.Scan(&in.id, &in.name); err != nil {
			rows.Close()
			return fmt.Errorf("instances of worker %s: %w", wk.Name, err)
		}
		list = append(list, in)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("instances of worker %s: %w", wk.Name, err)
	}
	for _, in := range list {
		res, err := db.ExecContext(ctx, "DELETE FROM model_instances WHERE id = "+placeholder(db, 1), in.id)
		if err != nil {
			return fmt.Errorf("delete instance %s: %s", in.name, pyPGError(err))
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		c.rescheduled++
		c.s.log.log(logServer, levelInfo, "Rescheduling model instance %s: worker %s is unreachable beyond the grace period; instance deleted.", in.name, wk.Name)
	}
	return nil
}

func (c *clusterServer) rescheduledCount() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rescheduled
}
