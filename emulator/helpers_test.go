package emulator

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run is one emulator process run in-process.
type run struct {
	t      *testing.T
	stdout *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int
	port   string // set once listening
	code   int
}

var uvicornLine = regexp.MustCompile(`Uvicorn running on http://0\.0\.0\.0:(\d+)`)

// startRun runs `gpustack start --data-dir dir --port 0 args...` as release
// rel with env, and returns once the server listens or the run has ended.
func startRun(t *testing.T, rel, dir string, env map[string]string, args ...string) *run {
	t.Helper()
	getenv := func(k string) string {
		if k == EnvRelease {
			return rel
		}
		return env[k]
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	argv := append([]string{"start", "--data-dir", dir, "--port", "0"}, args...)
	go func() { r.done <- Main(ctx, argv, getenv, r.stdout, r.stderr) }()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case code := <-r.done:
			r.code = code
			cancel()
			r.done = nil
			return r
		case <-deadline:
			cancel()
			t.Fatalf("emulator %s did not listen or exit; log:\n%s", rel, r.stdout)
		case <-time.After(5 * time.Millisecond):
			if m := uvicornLine.FindStringSubmatch(r.stdout.String()); m != nil {
				r.port = m[1]
				t.Cleanup(func() { r.stop() })
				return r
			}
		}
	}
}

// stop sends the emulated SIGTERM and waits for the exit code.
func (r *run) stop() int {
	if r.done == nil {
		return r.code
	}
	r.cancel()
	select {
	case r.code = <-r.done:
	case <-time.After(10 * time.Second):
		r.t.Fatalf("emulator did not stop; log:\n%s", r.stdout)
	}
	r.done = nil
	return r.code
}

// mustServe fails unless the run is listening; it then stops it cleanly.
func mustServe(t *testing.T, rel, dir string, env map[string]string, args ...string) string {
	t.Helper()
	r := startRun(t, rel, dir, env, args...)
	if r.port == "" {
		t.Fatalf("%s: start failed (exit %d); log:\n%s%s", rel, r.code, r.stdout, r.stderr)
	}
	if code := r.stop(); code != 0 {
		t.Fatalf("%s: exit %d after SIGTERM; log:\n%s", rel, code, r.stdout)
	}
	return r.stdout.String()
}

// mustFail fails unless the run ends on its own with exit 0 and a log
// containing want.
func mustFail(t *testing.T, rel, dir string, env map[string]string, want string) string {
	t.Helper()
	r := startRun(t, rel, dir, env)
	if r.port != "" {
		t.Fatalf("%s: started, want failure %q; log:\n%s", rel, want, r.stdout)
	}
	if r.code != 0 {
		t.Errorf("%s: exit %d, want 0 (SQLite-era releases swallow start errors)", rel, r.code)
	}
	if !strings.Contains(r.stdout.String(), want) {
		t.Fatalf("%s: log lacks %q:\n%s", rel, want, r.stdout)
	}
	return r.stdout.String()
}

func openTestDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := openDB(dir, Release{}, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func stamped(t *testing.T, dir string) string {
	t.Helper()
	db := openTestDB(t, dir)
	rev, err := stampedRevision(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func columnsOf(t *testing.T, dir, table string) []string {
	t.Helper()
	s, err := readSchema(context.Background(), openTestDB(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return s[table]
}

func hasColumn(t *testing.T, dir, table, col string) bool {
	return slices.Contains(columnsOf(t, dir, table), col)
}

// emulatorCmd runs a `gpustack emulator …` subcommand and decodes its JSON.
func emulatorCmd(t *testing.T, dir string, out any, args ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	argv := append([]string{"emulator", args[0], "--data-dir", dir}, args[1:]...)
	if code := Main(context.Background(), argv, func(string) string { return "" }, &stdout, &stderr); code != 0 {
		t.Fatalf("%v: exit %d: %s", argv, code, stderr.String())
	}
	if out != nil {
		if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
			t.Fatalf("%v: %v: %s", argv, err, stdout.String())
		}
	}
}

func rows(t *testing.T, dir string) map[string]int {
	t.Helper()
	var counts map[string]int
	emulatorCmd(t, dir, &counts, "rows")
	return counts
}
