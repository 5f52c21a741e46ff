package emulator

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The test-only subcommands for clusters:
//
//	gpustack emulator workers [--data-dir DIR] [--database-url URL]
//	    the server's workers table, read from its database, as a JSON
//	    array: id, name, state, and worker_uuid, worker_version,
//	    maintenance and heartbeat_time when the release has the column
//	    (a NULL is null); ordered by id.
//	gpustack emulator debug [--port N]
//	    prints the body of GET http://127.0.0.1:N/debug/emulator (its
//	    "rescheduled" counter, its revision…); N is --port, else
//	    $GPUSTACK_PORT, else PID 1's `start --port`, else 80.

// workerColumns are the columns `emulator workers` prints, in the order
// they are selected; the first three are required.
var workerColumns = []string{"id", "name", "state", "worker_uuid", "worker_version", "maintenance", "heartbeat_time"}

// workerRows reads the workers table on any of the emulator's databases
// (SQLite, PostgreSQL, MySQL): the columns it has are asked of the
// database itself, so one query serves every release.
func workerRows(ctx context.Context, db *sql.DB) ([]map[string]any, error) {
	probe, err := db.QueryContext(ctx, "SELECT * FROM workers WHERE 1 = 0")
	if err != nil {
		return nil, fmt.Errorf("workers table: %w", err)
	}
	have, err := probe.Columns()
	probe.Close()
	if err != nil {
		return nil, fmt.Errorf("columns of workers: %w", err)
	}
	var cols []string
	for i, c := range workerColumns {
		if slices.Contains(have, c) {
			cols = append(cols, c)
		} else if i < 3 {
			return nil, fmt.Errorf("the workers table has no column %s (it has %s)", c, strings.Join(have, ", "))
		}
	}
	rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM workers ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read workers: %w", err)
	}
	defer rows.Close()
	out := []map[string]any{}
	for rows.Next() {
		var id int64
		var name, state sql.NullString
		var rest = make([]any, len(cols)-3)
		dest := []any{&id, &name, &state}
		for i := range rest {
			dest = append(dest, &rest[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read workers: %w", err)
		}
		row := map[string]any{"id": id, "name": name.String, "state": state.String}
		for i, c := range cols[3:] {
			v := rest[i]
			if v == nil {
				row[c] = nil
				continue
			}
			switch c {
			case "heartbeat_time":
				if t := asTime(v); !t.IsZero() {
					row[c] = t.Format("2006-01-02T15:04:05.000000")
				} else {
					row[c] = asString(v)
				}
			case "maintenance":
				// JSON in PostgreSQL, LONGTEXT in MariaDB: printed as the
				// object it holds.
				if s := asString(v); json.Valid([]byte(s)) {
					row[c] = json.RawMessage(s)
				} else {
					row[c] = s
				}
			default:
				row[c] = asString(v)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read workers: %w", err)
	}
	return out, nil
}

// runEmulatorWorkers prints workerRows as JSON.
func runEmulatorWorkers(ctx context.Context, db *sql.DB, args []string, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: gpustack emulator workers [--data-dir DIR] [--database-url URL]")
		return 2
	}
	ws, err := workerRows(ctx, db)
	if err != nil {
		return fail(stderr, "workers", err)
	}
	return printJSON(stdout, stderr, ws)
}

// runEmulatorDebug is `gpustack emulator debug [--port N]`.
func runEmulatorDebug(ctx context.Context, args []string, getenv func(string) string, cmdline func() ([]byte, error), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gpustack emulator debug", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 0, "the server's port (default $GPUSTACK_PORT, then PID 1's --port, then 80)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: gpustack emulator debug [--port N]")
		return 2
	}
	p, err := serverPortOf(*port, getenv, cmdline)
	if err != nil {
		return fail(stderr, "debug", err)
	}
	body, err := getDebug(ctx, fmt.Sprintf("http://127.0.0.1:%d/debug/emulator", p))
	if err != nil {
		return fail(stderr, "debug", err)
	}
	if _, err := stdout.Write(body); err != nil {
		return fail(stderr, "debug", err)
	}
	return 0
}

// getDebug GETs url and returns the body of a 200 answer.
func getDebug(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: read: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// serverPortOf is the port the server listens on: flagValue when set,
// else $GPUSTACK_PORT, else the --port of PID 1's `gpustack start` (the
// server in its container), else 80, GPUStack's default.
func serverPortOf(flagValue int, getenv func(string) string, cmdline func() ([]byte, error)) (int, error) {
	if flagValue != 0 {
		return checkPort("--port", strconv.Itoa(flagValue))
	}
	if v := getenv("GPUSTACK_PORT"); v != "" {
		return checkPort("GPUSTACK_PORT", v)
	}
	if cmdline != nil {
		if b, err := cmdline(); err == nil {
			args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
			isStart := false
			for i, a := range args {
				isStart = isStart || a == "start"
				if !isStart {
					continue
				}
				if v, ok := strings.CutPrefix(a, "--port="); ok {
					return checkPort("PID 1's --port", v)
				}
				if a == "--port" && i+1 < len(args) {
					return checkPort("PID 1's --port", args[i+1])
				}
			}
		}
	}
	return 80, nil
}

func checkPort(what, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("%s %q: not a port", what, v)
	}
	return n, nil
}
