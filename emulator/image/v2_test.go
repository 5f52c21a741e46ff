package image

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

func TestDockerfileV2(t *testing.T) {
	spec, err := SpecFor("gpustack/gpustack", "v2.2.3")
	if err != nil {
		t.Fatal(err)
	}
	df, err := spec.dockerfile()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"FROM " + PostgresBaseRef() + "\n", "COPY gpustack /usr/bin/gpustack\n", `ENV GPUSTACK_EMULATOR_RELEASE="v2.2.3"`,
		`org.opencontainers.image.version="v2.2.3"`, "VOLUME /var/lib/gpustack\n", `ENTRYPOINT ["/usr/bin/gpustack", "start"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q:\n%s", want, df)
		}
	}
	if _, err := SpecFor("gpustack/gpustack", "v2.2.3-cpu"); err == nil {
		t.Error("v2.2.3-cpu: no error")
	}
}

// newVolume creates a named volume removed at cleanup.
func newVolume(t *testing.T, cli client.APIClient) string {
	t.Helper()
	name := "gpustack-emu-test-" + suffix(t)
	if _, err := cli.VolumeCreate(context.Background(), volume.CreateOptions{Name: name}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.VolumeRemove(context.Background(), name, true); err != nil {
			t.Errorf("remove volume: %v", err)
		}
	})
	return name
}

// startOn starts a container of ref on the volume with port 80 on loopback;
// it is removed at cleanup.
func startOn(t *testing.T, cli client.APIClient, ref, vol string, env ...string) string {
	t.Helper()
	ctx := context.Background()
	resp, err := cli.ContainerCreate(ctx,
		&container.Config{Image: ref, Env: env, ExposedPorts: nat.PortSet{"80/tcp": {}}},
		&container.HostConfig{
			Mounts:       []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/var/lib/gpustack"}},
			PortBindings: nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1"}}},
		}, nil, nil, "gpustack-emu-test-"+suffix(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

// healthyOn starts ref on vol and waits for /healthz; it returns the
// container id and how long that took.
func healthyOn(t *testing.T, cli client.APIClient, ref, vol string, env ...string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	id := startOn(t, cli, ref, vol, env...)
	waitHealthy(t, "http://127.0.0.1:"+hostPort(t, cli, id)+"/healthz", func() string { return logs(t, cli, id) })
	return id, time.Since(start)
}

// exited waits for the container to end on its own and returns its code.
func exited(t *testing.T, cli client.APIClient, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	statusC, errC := cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case st := <-statusC:
		return int(st.StatusCode)
	case err := <-errC:
		t.Fatalf("wait: %v; log:\n%s", err, logs(t, cli, id))
	}
	return -1
}

// stop stops the container with Docker's default 10 s grace and checks it
// ended by itself with exit 0.
func stop(t *testing.T, cli client.APIClient, id string) time.Duration {
	t.Helper()
	start := time.Now()
	secs := 10
	if err := cli.ContainerStop(context.Background(), id, container.StopOptions{Timeout: &secs}); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	st, err := cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State.ExitCode != 0 || d > 9*time.Second {
		t.Errorf("stop: exit %d after %s; log:\n%s", st.State.ExitCode, d, logs(t, cli, id))
	}
	return d
}

func psql(t *testing.T, cli client.APIClient, id, query string) string {
	t.Helper()
	return strings.TrimSpace(execIn(t, cli, id, "psql", "-h", "127.0.0.1", "-U", "root", "-d", "gpustack", "-tAc", query))
}

// controlState runs pg_controldata on the volume in a one-off container.
func controlState(t *testing.T, cli client.APIClient, ref, vol string) string {
	t.Helper()
	ctx := context.Background()
	resp, err := cli.ContainerCreate(ctx,
		&container.Config{Image: ref, Entrypoint: []string{"pg_controldata", "/var/lib/gpustack/postgresql/data"}},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/var/lib/gpustack"}}},
		nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if code := exited(t, cli, resp.ID); code != 0 {
		t.Fatalf("pg_controldata: exit %d: %s", code, logs(t, cli, resp.ID))
	}
	for _, l := range strings.Split(logs(t, cli, resp.ID), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == "Database cluster state" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("pg_controldata: no state")
	return ""
}

func rowCounts(t *testing.T, cli client.APIClient, id string) map[string]int {
	t.Helper()
	var counts map[string]int
	if err := json.Unmarshal([]byte(execIn(t, cli, id, "gpustack", "emulator", "rows")), &counts); err != nil {
		t.Fatal(err)
	}
	return counts
}

// TestV2Images runs the v2 emulator images on a real engine: fresh start,
// clean stop, upgrade, a failed upgrade that rolls back, and the data
// migration from a v0.7.1 volume with its failure knobs.
func TestV2Images(t *testing.T) {
	cli := engine(t)
	needPostgresBase(t, cli)
	ctx := context.Background()
	v212, _ := SpecFor("gpustack/gpustack", "v2.1.2")
	v223, _ := SpecFor("gpustack/gpustack", "v2.2.3")
	v071, _ := SpecFor("gpustack/gpustack", "v0.7.1-cpu")
	start := time.Now()
	if err := Build(ctx, cli, moduleRoot(t), v212, v223, v071); err != nil {
		t.Fatal(err)
	}
	t.Logf("build: %s", time.Since(start).Round(time.Millisecond))
	info, err := cli.ImageInspect(ctx, v223.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if l := info.Config.Labels; l[LabelVersion] != "v2.2.3" || l[LabelEmulator] != "true" {
		t.Errorf("labels %v", l)
	}
	t.Logf("v2.2.3 image: %d MB", info.Size>>20)

	t.Run("fresh, stop, upgrade", func(t *testing.T) {
		vol := newVolume(t, cli)
		id, took := healthyOn(t, cli, v212.Ref, vol)
		t.Logf("v2.1.2 fresh start to healthy: %s", took.Round(time.Millisecond))
		if rev := psql(t, cli, id, "SELECT version_num FROM alembic_version"); rev != "8ad0f94c92e8" {
			t.Errorf("revision %q", rev)
		}
		execIn(t, cli, id, "test", "-s", "/var/lib/gpustack/bootstrap_version")
		if dump := execIn(t, cli, id, "pg_dump", "-h", "127.0.0.1", "-U", "root", "--schema-only", "gpustack"); !strings.Contains(dump, "CREATE TABLE public.alembic_version") {
			t.Errorf("pg_dump --schema-only lacks alembic_version:\n%.2000s", dump)
		}
		// The socket and Debian's /usr/bin wrapper work too.
		if n := strings.TrimSpace(execIn(t, cli, id, "/usr/bin/psql", "-U", "root", "-d", "gpustack", "-tAc", "SELECT count(*) FROM users WHERE username = 'admin'")); n != "1" {
			t.Errorf("admin users over the socket: %q", n)
		}
		if own := execIn(t, cli, id, "stat", "-c", "%u:%g %a", "/var/lib/gpustack/postgresql/data"); own != "9999:9999 700\n" {
			t.Errorf("PGDATA %q", own)
		}
		if v := execIn(t, cli, id, "gpustack", "version"); v != "v2.1.2 (e3b0c44)\n" {
			t.Errorf("version %q", v)
		}
		execIn(t, cli, id, "gpustack", "emulator", "seed", "--models", "2", "--instances", "2")
		t.Logf("stop: %s", stop(t, cli, id).Round(time.Millisecond))
		if st := controlState(t, cli, v212.Ref, vol); st != "shut down" {
			t.Errorf("pg_control state %q", st)
		}

		// A failed upgrade rolls back to the previous stamp.
		id = startOn(t, cli, v223.Ref, vol, "GPUSTACK_EMULATOR_FAIL_MIGRATION=c4d7e8f9a0b1")
		if code := exited(t, cli, id); code != 1 || !strings.Contains(logs(t, cli, id), "RuntimeError: Database migration failed:") {
			t.Errorf("failed upgrade: exit %d; log:\n%s", code, logs(t, cli, id))
		}
		id, _ = healthyOn(t, cli, v212.Ref, vol)
		if rev := psql(t, cli, id, "SELECT version_num FROM alembic_version"); rev != "8ad0f94c92e8" {
			t.Errorf("revision after the failed upgrade %q", rev)
		}
		stop(t, cli, id)

		id, took = healthyOn(t, cli, v223.Ref, vol)
		t.Logf("upgrade v2.1.2 → v2.2.3 to healthy: %s", took.Round(time.Millisecond))
		if rev := psql(t, cli, id, "SELECT version_num FROM alembic_version"); rev != "c4d7e8f9a0b1" {
			t.Errorf("revision after upgrade %q", rev)
		}
		if c := rowCounts(t, cli, id); c["models"] != 2 || c["model_instances"] != 2 {
			t.Errorf("rows after upgrade %v", c)
		}
		stop(t, cli, id)
	})

	// seededV071 returns a volume holding a stopped v0.7.1 server's data.
	seededV071 := func(t *testing.T) (string, map[string]int) {
		vol := newVolume(t, cli)
		id, _ := healthyOn(t, cli, v071.Ref, vol)
		execIn(t, cli, id, "gpustack", "emulator", "seed", "--models", "3", "--instances", "5", "--users", "2")
		for _, stmt := range []string{
			`INSERT INTO workers (created_at, updated_at, name, hostname, ip, state, labels, status) VALUES ('2025-08-01 10:00:00', '2025-08-01 10:00:00', 'w1', 'host1', '10.0.0.1', 'READY', '{}', '{}')`,
			`INSERT INTO api_keys (created_at, updated_at, name, access_key, hashed_secret_key, user_id) VALUES ('2025-08-01 10:00:00', '2025-08-01 10:00:00', 'k1', 'ak1', 'hs1', 1)`,
			`INSERT INTO model_files (created_at, updated_at, source, size, state) VALUES ('2025-08-01 10:00:00', '2025-08-01 10:00:00', 'HUGGING_FACE', 1234, 'READY')`,
			`INSERT INTO modelinstancemodelfilelink (model_instance_id, model_file_id) VALUES ((SELECT min(id) FROM model_instances), (SELECT min(id) FROM model_files))`,
			`INSERT INTO model_usages (created_at, updated_at, user_id, model_id, date, prompt_token_count, completion_token_count, request_count, operation) VALUES ('2025-08-01 10:00:00', '2025-08-01 10:00:00', 1, (SELECT min(id) FROM models), '2025-08-01', 10, 20, 3, 'CHAT_COMPLETION')`,
			`INSERT INTO system_loads (created_at, updated_at, timestamp, cpu, ram, gpu, vram) VALUES ('2025-08-01 10:00:00', '2025-08-01 10:00:00', 1754042400, 0.5, 0.25, 0.1, 0.2)`,
		} {
			execIn(t, cli, id, "gpustack", "emulator", "sql", stmt)
		}
		counts := rowCounts(t, cli, id)
		stop(t, cli, id)
		return vol, counts
	}

	t.Run("data migration", func(t *testing.T) {
		vol, before := seededV071(t)
		id, took := healthyOn(t, cli, v223.Ref, vol, "GPUSTACK_DATA_MIGRATION=true")
		t.Logf("v0.7.1 → v2.2.3 with data migration to healthy: %s", took.Round(time.Millisecond))
		after := rowCounts(t, cli, id)
		for _, table := range []string{"models", "model_instances", "workers", "api_keys", "model_files", "modelinstancemodelfilelink", "model_usages", "system_loads"} {
			if after[table] != before[table] || after[table] == 0 {
				t.Errorf("%s: %d rows before, %d after", table, before[table], after[table])
			}
		}
		if n := psql(t, cli, id, "SELECT count(*) FROM principals WHERE kind = 'USER'"); n != "3" || before["users"] != 3 {
			t.Errorf("users: %d before, %s USER principals after", before["users"], n)
		}
		execIn(t, cli, id, "test", "-f", "/var/lib/gpustack/run/state_migration_done")
		execIn(t, cli, id, "test", "-f", "/var/lib/gpustack/database.db")
		if !strings.Contains(logs(t, cli, id), "Migration completed successfully.") {
			t.Errorf("log:\n%s", logs(t, cli, id))
		}
		stop(t, cli, id)
	})

	t.Run("data migration fails midway", func(t *testing.T) {
		vol, _ := seededV071(t)
		id := startOn(t, cli, v223.Ref, vol, "GPUSTACK_DATA_MIGRATION=true", "GPUSTACK_EMULATOR_FAIL_DATA_MIGRATION=copy")
		if code := exited(t, cli, id); code != 1 || !strings.Contains(logs(t, cli, id), "Failed to migrate: ") {
			t.Errorf("exit %d; log:\n%s", code, logs(t, cli, id))
		}
		id = startOn(t, cli, v223.Ref, vol, "GPUSTACK_DATA_MIGRATION=true")
		if code := exited(t, cli, id); code != 1 || !strings.Contains(logs(t, cli, id), "UniqueViolation") {
			t.Errorf("retry: exit %d; log:\n%s", code, logs(t, cli, id))
		}
	})

	t.Run("upgrade fails after the data migration", func(t *testing.T) {
		vol, before := seededV071(t)
		id := startOn(t, cli, v223.Ref, vol, "GPUSTACK_DATA_MIGRATION=true", "GPUSTACK_EMULATOR_FAIL_DATA_MIGRATION=after-done")
		if code := exited(t, cli, id); code != 1 {
			t.Errorf("exit %d; log:\n%s", code, logs(t, cli, id))
		}
		// #3575: the restart skips the migration and serves what PostgreSQL holds.
		id, _ = healthyOn(t, cli, v223.Ref, vol, "GPUSTACK_DATA_MIGRATION=true")
		if c := rowCounts(t, cli, id); c["models"] != before["models"] {
			t.Errorf("rows %v", c)
		}
		if !strings.Contains(logs(t, cli, id), "Migration already completed previously. Skipping.") {
			t.Errorf("log:\n%s", logs(t, cli, id))
		}
		stop(t, cli, id)
	})
}
