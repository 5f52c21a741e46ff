package main

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// tracer is a reverse proxy in front of the engine's unix socket that
// records every Engine API call a gpustack-deploy process makes (passed as
// --docker-host unix://<sock>): when it started relative to the process
// start, how long it took, and its status. Streams (logs, wait) are
// recorded when they end. Used only for the extra traced runs, never for
// the timed ones.
type tracer struct {
	sock string
	srv  *http.Server

	mu       sync.Mutex
	t0       time.Time
	calls    []call
	inflight int
}

type call struct {
	start, dur time.Duration // from t0
	method     string
	path       string // normalised: no API version, ids and names replaced
	status     int
}

func (c call) endpoint() string { return c.method + " " + c.path }

func startTracer(dir, upstream string) (*tracer, error) {
	t := &tracer{sock: filepath.Join(dir, "docker-trace.sock")}
	ln, err := net.Listen("unix", t.sock)
	if err != nil {
		return nil, err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "docker"
			r.Out.Host = "docker"
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", upstream)
			},
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	t.srv = &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		t.mu.Lock()
		t.inflight++
		t.mu.Unlock()
		begin := time.Now()
		// Deferred: ReverseProxy panics with http.ErrAbortHandler when the
		// client goes away in the middle of a stream, which is how every
		// followed log and wait ends.
		defer func() {
			end := time.Now()
			t.mu.Lock()
			t.calls = append(t.calls, call{start: begin.Sub(t.t0), dur: end.Sub(begin), method: r.Method, path: normalise(r.URL), status: rec.status})
			t.inflight--
			t.mu.Unlock()
		}()
		rp.ServeHTTP(rec, r)
	})}
	go t.srv.Serve(ln)
	return t, nil
}

// host is the value for --docker-host.
func (t *tracer) host() string { return "unix://" + t.sock }

// begin clears the record and sets the time origin (the process start).
func (t *tracer) begin() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.t0 = time.Now()
	t.calls = nil
}

// end returns the calls recorded since begin, in start order. It first
// gives the streams the process left open (logs, wait) a moment to notice
// that their client is gone.
func (t *tracer) end() []call {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		t.mu.Lock()
		n := t.inflight
		t.mu.Unlock()
		if n == 0 {
			break
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]call(nil), t.calls...)
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

func (t *tracer) close() { t.srv.Close() }

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController flush and hijack through it.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var (
	apiVersion = regexp.MustCompile(`^/v1\.[0-9]+`)
	hexID      = regexp.MustCompile(`[0-9a-f]{64}`)
	benchName  = regexp.MustCompile(`gsdbench-[0-9a-f]{6}-[a-z]+[0-9]+`)
)

// normalise turns a request URL into a stable endpoint name: the API
// version is dropped, ids and the run's names become {id} and {name}, and
// only the query parameters that say what was asked for are kept.
func normalise(u *url.URL) string {
	p := apiVersion.ReplaceAllString(u.Path, "")
	p = hexID.ReplaceAllString(p, "{id}")
	p = benchName.ReplaceAllString(p, "{name}")
	q := u.Query()
	var keep []string
	for _, k := range []string{"path", "follow", "condition", "t", "force"} {
		if v := q.Get(k); v != "" {
			keep = append(keep, k+"="+benchName.ReplaceAllString(v, "{name}"))
		}
	}
	if len(keep) > 0 {
		p += "?" + strings.Join(keep, "&")
	}
	return p
}

// aggregate sums the calls per endpoint, in order of total time.
type endpointTotal struct {
	endpoint string
	count    int
	total    time.Duration
	max      time.Duration
}

func aggregate(calls []call) []endpointTotal {
	by := map[string]*endpointTotal{}
	var order []string
	for _, c := range calls {
		e := by[c.endpoint()]
		if e == nil {
			e = &endpointTotal{endpoint: c.endpoint()}
			by[c.endpoint()] = e
			order = append(order, c.endpoint())
		}
		e.count++
		e.total += c.dur
		e.max = max(e.max, c.dur)
	}
	out := make([]endpointTotal, 0, len(order))
	for _, k := range order {
		out = append(out, *by[k])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].total > out[j].total })
	return out
}
