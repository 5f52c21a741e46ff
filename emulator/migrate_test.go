package emulator

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// markers are written from facts §3.2 independently of revisions.go: per
// revision, table.column (or table) that must exist once it is applied,
// and columns it removes.
var markers = []struct {
	rev     string
	present []string
	absent  []string
}{
	{"1dd9fa5b38ff", []string{"api_keys.access_key", "models.ready_replicas", "system_loads.gpu_memory", "users.hashed_password", "workers.status", "model_instances.gpu_index", "model_usages.operation"}, nil},
	{"8277680cfcb7", []string{"models.embedding_only"}, nil},
	{"6dcb3a50da19", []string{"system_loads.ram", "system_loads.vram", "models.placement_strategy", "models.cpu_offloading", "models.distributed_inference_across_workers", "models.worker_selector", "models.gpu_selector", "model_instances.distributed_servers", "model_instances.gpu_indexes"},
		[]string{"system_loads.memory", "system_loads.gpu_memory", "model_instances.gpu_index"}},
	{"f29521415cbd", []string{"model_instances.model_scope_model_id", "model_instances.model_scope_file_path", "models.distributable", "models.backend", "models.backend_parameters"}, nil},
	{"0f7dde8b3c4b", []string{"models.reranker"}, nil},
	{"004c73a5c09e", []string{"model_instances.local_path", "models.backend_version", "models.local_path", "models.image_only", "models.speech_to_text", "models.text_to_speech"}, nil},
	{"e6bf9e067296", []string{"models.categories", "models.meta", "workers.port", "workers.unreachable", "workers.heartbeat_time"}, nil},
	{"c45e397531d1", []string{"models.env", "models.restart_on_error", "model_instances.resolved_path", "model_instances.restart_count", "model_instances.last_restart_time", "model_files", "modelinstancemodelfilelink"}, nil},
	{"cbbc03c88985", []string{"workers.worker_uuid", "model_instances.ports", "model_instances.gpu_addresses"}, nil},
	{"d19176de3b74", []string{"users.source", "users.avatar_url"}, nil},
}

func checkMarkers(t *testing.T, dir, head string) {
	t.Helper()
	s := schemaOf(t, dir)
	has := func(m string) bool {
		table, col, ok := strings.Cut(m, ".")
		cols, exists := s[table]
		if !ok {
			return exists
		}
		return slices.Contains(cols, col)
	}
	want := map[string]bool{}
	reached := true
	for _, m := range markers {
		for _, p := range m.present {
			want[p] = reached
		}
		for _, a := range m.absent {
			if reached {
				want[a] = false
			}
		}
		if m.rev == head {
			reached = false
		}
	}
	for m, w := range want {
		if has(m) != w {
			t.Errorf("head %s: %s present=%v, want %v", head, m, has(m), w)
		}
	}
}

func schemaOf(t *testing.T, dir string) schema {
	t.Helper()
	db := openTestDB(t, dir)
	s, err := readSchema(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFreshDatabaseAtEachRelease(t *testing.T) {
	cases := map[string]string{
		"0.1.0": "1dd9fa5b38ff", "0.1.1": "8277680cfcb7", "0.1.2": "8277680cfcb7",
		"0.2.0": "6dcb3a50da19", "0.3.0": "f29521415cbd", "0.3.1": "0f7dde8b3c4b",
		"0.3.2": "0f7dde8b3c4b", "v0.4.0": "004c73a5c09e", "v0.4.1": "004c73a5c09e",
		"v0.5.0rc1": "e6bf9e067296", "v0.5.1": "e6bf9e067296", "v0.6.0": "c45e397531d1",
		"v0.6.2": "c45e397531d1", "v0.7.0rc2": "cbbc03c88985", "v0.7.0": "cbbc03c88985",
		"v0.7.1rc1": "d19176de3b74", "v0.7.1": "d19176de3b74",
	}
	for rel, head := range cases {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			log := mustServe(t, rel, dir, nil)
			if got := stamped(t, dir); got != head {
				t.Errorf("stamped %s, want %s", got, head)
			}
			checkMarkers(t, dir, head)
			for _, f := range []string{"token", "jwt_secret_key", "initial_admin_password"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
			if n := rows(t, dir)["users"]; n != 1 {
				t.Errorf("users = %d, want the admin only", n)
			}
			emulatorCmd(t, dir, nil, "seed", "--models", "2", "--instances", "2", "--users", "1")
			if got := rows(t, dir); got["models"] != 2 || got["model_instances"] != 2 || got["users"] != 2 {
				t.Errorf("seed at %s: %v", head, got)
			}
			wantVersionLine := strings.HasPrefix(rel, "v0.7")
			if got := strings.Contains(log, "gpustack.cmd.start - INFO - GPUStack version: "+rel+" (e3b0c44)"); got != wantVersionLine {
				t.Errorf("version line present=%v, want %v:\n%s", got, wantVersionLine, log)
			}
			for _, line := range []string{"gpustack.server.server - INFO - Running database migration.", "gpustack.server.server - INFO - Database migration completed."} {
				if !strings.Contains(log, line) {
					t.Errorf("log lacks %q", line)
				}
			}
			wantMode := "delete"
			if strings.HasPrefix(rel, "v0.7") {
				wantMode = "wal"
			}
			if mode := journalMode(t, dir); mode != wantMode {
				t.Errorf("journal mode %s, want %s", mode, wantMode)
			}
		})
	}
}

func journalMode(t *testing.T, dir string) string {
	var mode string
	if err := openTestDB(t, dir).QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	return mode
}

func TestUpgradeStepByStep(t *testing.T) {
	dir := t.TempDir()
	mustServe(t, "0.3.2", dir, nil)
	emulatorCmd(t, dir, nil, "seed", "--models", "2", "--instances", "3", "--users", "2")

	log := mustServe(t, "v0.5.1", dir, nil, "--debug")
	if got := stamped(t, dir); got != "e6bf9e067296" {
		t.Fatalf("after v0.5.1: stamped %s", got)
	}
	for _, want := range []string{
		"alembic.runtime.migration - INFO - Running upgrade 0f7dde8b3c4b -> 004c73a5c09e, add local_path",
		"alembic.runtime.migration - INFO - Running upgrade 004c73a5c09e -> e6bf9e067296, add model categories",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	var cats []map[string]any
	emulatorCmd(t, dir, &cats, "sql", "SELECT DISTINCT categories FROM models")
	if len(cats) != 1 || cats[0]["categories"] != `["llm"]` {
		t.Errorf("categories back-fill: %v", cats)
	}

	log = mustServe(t, "v0.6.0", dir, nil)
	if strings.Contains(log, "Running upgrade") {
		t.Errorf("alembic steps logged without --debug:\n%s", log)
	}
	if got := stamped(t, dir); got != "c45e397531d1" {
		t.Fatalf("after v0.6.0: stamped %s", got)
	}
	checkMarkers(t, dir, "c45e397531d1")
	got := rows(t, dir)
	if got["users"] != 3 || got["models"] != 2 || got["model_instances"] != 3 || got["model_files"] != 0 {
		t.Errorf("rows after upgrades: %v", got)
	}
	var seq []map[string]any
	emulatorCmd(t, dir, &seq, "sql", "SELECT sql FROM sqlite_master WHERE name = 'users'")
	if len(seq) != 1 || !strings.Contains(seq[0]["sql"].(string), "AUTOINCREMENT") {
		t.Errorf("users not recreated with AUTOINCREMENT: %v", seq)
	}
}

func TestDistributedSchedulingDeletesInstances(t *testing.T) {
	dir := t.TempDir()
	mustServe(t, "0.1.2", dir, nil)
	emulatorCmd(t, dir, nil, "seed", "--models", "1", "--instances", "2")
	mustServe(t, "0.2.0", dir, nil)
	if got := rows(t, dir); got["model_instances"] != 0 || got["models"] != 1 {
		t.Errorf("6dcb3a50da19 must delete every model instance and keep models: %v", got)
	}
}

func TestHalfAppliedMigrationThenDuplicateColumn(t *testing.T) {
	dir := t.TempDir()
	mustServe(t, "v0.4.1", dir, nil)
	mustFail(t, "v0.5.0", dir, map[string]string{EnvFailMigration: "e6bf9e067296"},
		"gpustack.cmd.start - ERROR - Error running server: (sqlite3.OperationalError) database is locked")
	if got := stamped(t, dir); got != "004c73a5c09e" {
		t.Errorf("half-applied revision stamped: %s", got)
	}
	if !hasColumn(t, dir, "models", "categories") {
		t.Error("first half of e6bf9e067296 not applied")
	}
	log := mustFail(t, "v0.5.1", dir, nil,
		"gpustack.cmd.start - ERROR - Error running server: (sqlite3.OperationalError) duplicate column name: categories")
	if !strings.Contains(log, "gpustack.cmd.start - INFO - Server has shut down.") {
		t.Errorf("v0.5 era logs the shutdown:\n%s", log)
	}
}

func TestFailureLoggingPerEra(t *testing.T) {
	cases := []struct{ base, rel, want string }{
		{"0.2.1", "0.3.0", "gpustack.cmd.start - CRITICAL - (sqlite3.OperationalError) database is locked"},
		{"v0.5.1", "v0.6.0", "gpustack.cmd.start - ERROR - Error running server: (sqlite3.OperationalError) database is locked"},
		{"v0.6.2", "v0.7.0", "gpustack.cmd.start - ERROR - Error running server: Database migration failed: (sqlite3.OperationalError) database is locked"},
	}
	for _, c := range cases {
		t.Run(c.rel, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			mustServe(t, c.base, dir, nil)
			mustFail(t, c.rel, dir, map[string]string{EnvFailMigration: "any"}, c.want)
		})
	}
}

func TestNewerRevisionCannotBeLocated(t *testing.T) {
	dir := t.TempDir()
	mustServe(t, "v0.6.0", dir, nil)
	mustFail(t, "v0.5.1", dir, nil, "ERROR - Error running server: Can't locate revision identified by 'c45e397531d1'")
	mustFail(t, "0.3.0", dir, nil, "gpustack.cmd.start - CRITICAL - Can't locate revision identified by 'c45e397531d1'")
	mustServe(t, "v0.7.1", dir, nil)
	mustFail(t, "v0.7.0", dir, nil, "Error running server: Database migration failed: Can't locate revision identified by 'd19176de3b74'")
}
