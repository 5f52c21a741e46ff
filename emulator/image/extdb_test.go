package image

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// externalPostgres starts a database-server container of the base image
// (ExternalPostgresEntrypoint) on the default bridge and returns its id and
// the URL for GPUStack, and the password in it.
func externalPostgres(t *testing.T, cli client.APIClient, base string) (id, url, password string) {
	t.Helper()
	return externalServer(t, cli, base, "gpustack-emu-extdb-", ExternalPostgresPasswordEnv,
		ExternalPostgresEntrypoint(), ExternalPostgresReady(), ExternalPostgresURL)
}

// externalServer starts a database server of the base image with entry
// point entry and a random password in passwordEnv, waits until ready
// succeeds through exec, and returns its id, the URL GPUStack is given
// (url(password, bridge IP)) and the password.
func externalServer(t *testing.T, cli client.APIClient, base, prefix, passwordEnv string, entry, ready []string,
	url func(password, ip string) string) (string, string, string) {
	t.Helper()
	ctx := context.Background()
	password := suffix(t) + suffix(t)
	resp, err := cli.ContainerCreate(ctx, &container.Config{
		Image: base, User: ExternalPostgresUser, Entrypoint: entry,
		Env: []string{passwordEnv + "=" + password},
	}, &container.HostConfig{NetworkMode: "bridge"}, nil, nil, prefix+suffix(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Errorf("remove database container: %v", err)
		}
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for execCode(t, cli, resp.ID, ready...) != 0 {
		if time.Since(start) > 60*time.Second {
			t.Fatalf("database not ready:\n%s", logs(t, cli, resp.ID))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("database ready in %s", time.Since(start).Round(time.Millisecond))
	info, err := cli.ContainerInspect(ctx, resp.ID)
	if err != nil {
		t.Fatal(err)
	}
	ep := info.NetworkSettings.Networks["bridge"]
	if ep == nil || ep.IPAddress == "" {
		t.Fatalf("database container has no bridge IP")
	}
	return resp.ID, url(password, ep.IPAddress), password
}

// execCode runs cmd in a container and returns its exit code.
func execCode(t *testing.T, cli client.APIClient, id string, cmd ...string) int {
	t.Helper()
	ctx := context.Background()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerExecStart(ctx, ex.ID, container.ExecStartOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		res, err := cli.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Running {
			return res.ExitCode
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestV2ExternalDatabase: v2.1.2 and then v2.2.3 on an external PostgreSQL
// given by GPUSTACK_DATABASE_URL only; the data volume gets no embedded
// PostgreSQL, the password reaches no log.
func TestV2ExternalDatabase(t *testing.T) {
	cli := engine(t)
	base := needPostgresBase(t, cli)
	ctx := context.Background()
	v212, _ := SpecFor("gpustack/gpustack", "v2.1.2")
	v223, _ := SpecFor("gpustack/gpustack", "v2.2.3")
	start := time.Now()
	if err := Build(ctx, cli, moduleRoot(t), v212, v223); err != nil {
		t.Fatal(err)
	}
	t.Logf("build: %s", time.Since(start).Round(time.Millisecond))
	dbID, url, password := externalPostgres(t, cli, base)
	dbRevision := func() string {
		return strings.TrimSpace(execIn(t, cli, dbID, ExternalPostgresPSQL("SELECT version_num FROM alembic_version")...))
	}
	dbRows := func() map[string]int64 {
		counts, err := ParseExternalPostgresRows(execIn(t, cli, dbID, ExternalPostgresPSQL(ExternalPostgresRowsQuery)...))
		if err != nil {
			t.Fatal(err)
		}
		return counts
	}
	noSecret := func(id string) {
		t.Helper()
		if l := logs(t, cli, id); strings.Contains(l, password) {
			t.Errorf("the container log shows the database password:\n%s", l)
		}
	}

	vol := newVolume(t, cli)
	env := "GPUSTACK_DATABASE_URL=" + url
	id, took := healthyOn(t, cli, v212.Ref, vol, env)
	t.Logf("v2.1.2 on the external database to healthy: %s", took.Round(time.Millisecond))
	if rev := dbRevision(); rev != "8ad0f94c92e8" {
		t.Errorf("revision %q", rev)
	}
	var counts map[string]int64
	if err := json.Unmarshal([]byte(execIn(t, cli, id, "gpustack", "emulator", "seed", "--models", "2", "--instances", "2")), &counts); err != nil {
		t.Fatal(err)
	}
	if counts["models"] != 2 || counts["model_instances"] != 2 || counts["users"] != 1 {
		t.Errorf("seed through GPUSTACK_DATABASE_URL: %v", counts)
	}
	if got := dbRows(); fmt.Sprint(got) != fmt.Sprint(counts) {
		t.Errorf("rows read in the database container %v, through the emulator %v", got, counts)
	}
	if out := execIn(t, cli, id, "sh", "-c", "ls -A /var/lib/gpustack; test ! -e /var/lib/gpustack/postgresql && test ! -e /var/lib/gpustack/postgres_root_pass && echo none"); !strings.HasSuffix(out, "none\n") || !strings.Contains(out, "bootstrap_version") {
		t.Errorf("data volume: %q", out)
	}
	if out := execIn(t, cli, id, "sh", "-c", "cat /proc/[0-9]*/comm | grep -cx postgres || true"); out != "0\n" {
		t.Errorf("a postgres runs in the GPUStack container: %q", out)
	}
	noSecret(id)
	t.Logf("stop: %s", stop(t, cli, id).Round(time.Millisecond))

	id, took = healthyOn(t, cli, v223.Ref, vol, env)
	t.Logf("upgrade v2.1.2 → v2.2.3 on the external database to healthy: %s", took.Round(time.Millisecond))
	if rev := dbRevision(); rev != "c4d7e8f9a0b1" {
		t.Errorf("revision after upgrade %q", rev)
	}
	if rev := strings.TrimSpace(execIn(t, cli, id, "gpustack", "emulator", "sql", "SELECT version_num FROM alembic_version")); rev != `[{"version_num":"c4d7e8f9a0b1"}]` {
		t.Errorf("revision through the emulator %s", rev)
	}
	after := rowCounts(t, cli, id)
	if after["models"] != 2 || after["model_instances"] != 2 || after["principals"] < 1 {
		t.Errorf("rows after upgrade %v", after)
	}
	noSecret(id)
	stop(t, cli, id)
}
