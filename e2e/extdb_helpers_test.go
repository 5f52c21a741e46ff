package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/gpustack-deploy/gpustack-deploy/emulator/image"
)

// An external PostgreSQL 15 for the tests of database_url: a container of
// the emulator's PostgreSQL base image (see image.ExternalPostgresEntrypoint)
// on the default bridge network, without a published port. GPUStack
// reaches it at the container's bridge IP; the suite talks to it only
// through `docker exec` (psql over the unix socket as the superuser
// postgres, trusted locally).

// extDBContainers maps the URLs startExternalPostgres returned to their
// container names, for externalPSQL, externalRevision and externalRows.
var extDBContainers sync.Map

// startExternalPostgres starts an external PostgreSQL and returns the URL
// GPUStack is given: postgresql://gpustack:<random hex>@<bridge
// IP>:5432/gpustack. The database gpustack is empty and owned by the
// non-superuser login role gpustack (scram-sha-256). The cluster lives in
// the container's /tmp; the container and its anonymous volumes are
// removed at cleanup. It calls needPostgres(t) first.
func startExternalPostgres(t testing.TB) (url string) {
	t.Helper()
	url, name := startExternalDB(t, externalDB{
		what: "PostgreSQL", prefix: "gsd-e2e-extdb-", label: "external-postgres",
		passwordEnv: image.ExternalPostgresPasswordEnv, entrypoint: image.ExternalPostgresEntrypoint(),
		ready: image.ExternalPostgresReady(), url: image.ExternalPostgresURL,
	})
	extDBContainers.Store(url, name)
	t.Cleanup(func() { extDBContainers.Delete(url) })
	return url
}

// externalDB is how one kind of external database server starts in a
// container of the emulator's base image.
type externalDB struct {
	what, prefix, label string
	passwordEnv         string
	entrypoint, ready   []string
	url                 func(password, ip string) string
}

// startExternalDB starts db's server on the default bridge network with a
// random password, waits until its ready command succeeds (through exec),
// registers its removal and returns the URL GPUStack is given and the
// container's name.
func startExternalDB(t testing.TB, db externalDB) (url, name string) {
	t.Helper()
	needPostgres(t)
	ctx := context.Background()
	password := randomHex(12)
	name = db.prefix + randomHex(4)
	resp, err := docker.ContainerCreate(ctx, &container.Config{
		Image:      image.PostgresBaseRef(),
		User:       image.ExternalPostgresUser,
		Env:        []string{db.passwordEnv + "=" + password},
		Entrypoint: db.entrypoint,
		Labels:     map[string]string{"io.gpustack-deploy.e2e": db.label},
	}, &container.HostConfig{NetworkMode: "bridge"}, nil, nil, name)
	if err != nil {
		t.Fatalf("create external %s: %v", db.what, err)
	}
	t.Cleanup(func() {
		err := docker.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil {
			t.Errorf("remove external %s %s: %v", db.what, name, err)
		}
	})
	if err := docker.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start external %s: %v", db.what, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ct := inspect(t, name)
		if ct == nil || ct.State == nil || !ct.State.Running {
			t.Fatalf("external %s %s is not running:\n%s", db.what, name, extDBLogs(name))
		}
		if code, _ := extDBExec(t, name, nil, db.ready...); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("external %s %s not ready after 60 s:\n%s", db.what, name, extDBLogs(name))
		}
		time.Sleep(200 * time.Millisecond)
	}
	ip := ""
	if ct := inspect(t, name); ct != nil && ct.NetworkSettings != nil {
		if ep := ct.NetworkSettings.Networks["bridge"]; ep != nil {
			ip = ep.IPAddress
		}
	}
	if ip == "" {
		t.Fatalf("external %s %s has no IP on the bridge network", db.what, name)
	}
	return db.url(password, ip), name
}

// externalPSQL runs query in the database of url (a URL from
// startExternalPostgres) as the superuser, through exec in its container,
// and returns psql's unaligned, tuples-only output (tab-separated),
// trimmed. An SQL error fails the test.
func externalPSQL(t testing.TB, url, query string) string {
	t.Helper()
	v, ok := extDBContainers.Load(url)
	if !ok {
		t.Fatal("externalPSQL: the URL is not one startExternalPostgres returned in this test")
	}
	return strings.TrimSpace(execIn(t, v.(string), image.ExternalPostgresPSQL(query)...))
}

// externalRevision returns the Alembic stamp of the external database, or
// "" when alembic_version does not exist (nothing migrated yet).
func externalRevision(t testing.TB, url string) string {
	t.Helper()
	if externalPSQL(t, url, "SELECT to_regclass('public.alembic_version') IS NULL") == "t" {
		return ""
	}
	return externalPSQL(t, url, "SELECT string_agg(version_num, ',') FROM alembic_version")
}

// externalRows counts the rows of every table of the external database's
// public schema, with the keys and values `gpustack emulator rows` prints.
func externalRows(t testing.TB, url string) map[string]int64 {
	t.Helper()
	counts, err := image.ParseExternalPostgresRows(externalPSQL(t, url, image.ExternalPostgresRowsQuery))
	if err != nil {
		t.Fatalf("external row counts: %v", err)
	}
	return counts
}

// extDBExec runs cmd with the extra env in a running container and returns
// its exit code and combined output, without failing on a non-zero exit.
func extDBExec(t testing.TB, name string, env []string, cmd ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := docker.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: cmd, Env: env, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, name, err)
	}
	att, err := docker.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, name, err)
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, name, err)
	}
	info, err := docker.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, name, err)
	}
	return info.ExitCode, out.String()
}

// extDBLogs returns the container's log, for failure messages.
func extDBLogs(name string) string {
	rc, err := docker.ContainerLogs(context.Background(), name, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		return fmt.Sprintf("%s(log cut: %v)", out.String(), err)
	}
	return out.String()
}

// TestExternalPostgresHelper checks the helper itself: an empty database,
// no stamp, and the role's password accepted over the bridge IP (the path
// GPUStack takes) while a wrong one is refused.
func TestExternalPostgresHelper(t *testing.T) {
	t.Parallel()
	url := startExternalPostgres(t)
	if rev := externalRevision(t, url); rev != "" {
		t.Errorf("revision of an empty database %q", rev)
	}
	if rows := externalRows(t, url); len(rows) != 0 {
		t.Errorf("rows of an empty database %v", rows)
	}
	name, _ := extDBContainers.Load(url)
	if code, out := extDBExec(t, name.(string), nil, "psql", "-X", "-tAc", "SELECT current_user || ' ' || current_database() || ' ' || (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)", url); code != 0 || strings.TrimSpace(out) != "gpustack gpustack false" {
		t.Errorf("password login over the bridge IP: exit %d: %q", code, out)
	}
	wrong := strings.Replace(url, "gpustack:", "gpustack:x", 1)
	if code, out := extDBExec(t, name.(string), nil, "psql", "-X", "-tAc", "SELECT 1", wrong); code == 0 || !strings.Contains(out, "password authentication failed") {
		t.Errorf("wrong password: exit %d: %q", code, out)
	}
	externalPSQL(t, url, "CREATE TABLE public.t (id int); INSERT INTO public.t VALUES (1), (2)")
	if rows := externalRows(t, url); len(rows) != 1 || rows["t"] != 2 {
		t.Errorf("rows %v", rows)
	}
}
