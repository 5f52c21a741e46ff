package emulator

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// v2Run starts release rel on dir with the host-PostgreSQL env plus extra.
func v2Run(t *testing.T, rel, dir string, env map[string]string, extra map[string]string) *run {
	t.Helper()
	all := map[string]string{}
	for k, v := range env {
		all[k] = v
	}
	for k, v := range extra {
		all[k] = v
	}
	return startRun(t, rel, dir, all)
}

// serving fails unless the run listens.
func serving(t *testing.T, r *run, rel string) {
	t.Helper()
	if r.port == "" {
		t.Fatalf("%s: start failed (exit %d); log:\n%s%s", rel, r.code, r.stdout, r.stderr)
	}
}

func sqlRows(t *testing.T, dir, stmt string) []map[string]any {
	t.Helper()
	var out []map[string]any
	emulatorCmd(t, dir, &out, "sql", stmt)
	return out
}

func pgStamped(t *testing.T, dir string) string {
	t.Helper()
	out := sqlRows(t, dir, "SELECT version_num FROM alembic_version")
	if len(out) != 1 {
		t.Fatalf("alembic_version: %v", out)
	}
	return out[0]["version_num"].(string)
}

// clusterState reads pg_control's "Database cluster state".
func clusterState(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(hostPGBin, "pg_controldata"), filepath.Join(dir, PostgresDataDir)).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_controldata: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == "Database cluster state" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("pg_controldata: no state:\n%s", out)
	return ""
}

func TestV2FreshUpgradeDowngrade(t *testing.T) {
	dir, env := pgTestDir(t)
	r := v2Run(t, "v2.1.2", dir, env, nil)
	serving(t, r, "v2.1.2")
	if rev := pgStamped(t, dir); rev != "8ad0f94c92e8" {
		t.Errorf("stamp %s", rev)
	}
	var counts map[string]int
	emulatorCmd(t, dir, &counts, "seed", "--models", "2", "--instances", "3", "--users", "1")
	if counts["models"] != 2 || counts["model_instances"] != 3 || counts["users"] != 2 || counts["clusters"] != 1 {
		t.Errorf("after seed: %v", counts)
	}
	if code := r.stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.stdout)
	}
	log := r.stdout.String()
	for _, want := range []string{
		"gpustack.cmd.start - INFO - GPUStack version: v2.1.2 (e3b0c44)",
		"gpustack.server.server - INFO - Running database migration.",
		"gpustack.server.server - INFO - Database migration completed.",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if st := clusterState(t, dir); st != "shut down" {
		t.Errorf("cluster state %q", st)
	}
	if b, err := os.ReadFile(filepath.Join(dir, BootstrapVersion)); err != nil || strings.TrimSpace(string(b)) != "v2.1.2" {
		t.Errorf("bootstrap_version: %q %v", b, err)
	}
	fi, err := os.Stat(filepath.Join(dir, PostgresDataDir))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("PGDATA: %v %v", fi.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, PostgresPassFile)); err != nil || len(b) != 16 {
		t.Errorf("postgres_root_pass: %q %v", b, err)
	}

	r = v2Run(t, "v2.2.3", dir, env, nil)
	serving(t, r, "v2.2.3")
	if rev := pgStamped(t, dir); rev != "c4d7e8f9a0b1" {
		t.Errorf("stamp after upgrade %s", rev)
	}
	emulatorCmd(t, dir, &counts, "rows")
	if counts["models"] != 2 || counts["model_instances"] != 3 || counts["principals"] < 2 {
		t.Errorf("after upgrade: %v", counts)
	}
	r.stop()

	// v2.1.2 cannot read a v2.2.3 database: traceback, exit 1 (v2.1.1+).
	r = v2Run(t, "v2.1.2", dir, env, nil)
	if r.port != "" || r.code != 1 {
		t.Fatalf("downgrade: port %q exit %d", r.port, r.code)
	}
	for _, want := range []string{"Traceback (most recent call last):", "RuntimeError: Database migration failed: Can't locate revision identified by 'c4d7e8f9a0b1'"} {
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("downgrade log lacks %q:\n%s", want, r.stdout)
		}
	}
	if st := clusterState(t, dir); st != "shut down" {
		t.Errorf("cluster state after failed start %q", st)
	}
}
