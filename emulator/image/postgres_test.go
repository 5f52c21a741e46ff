package image

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// needPostgresBase returns the PostgreSQL base image, building it when
// missing. Without debootstrap or root the test skips, or fails with CI=true.
func needPostgresBase(t *testing.T, cli client.APIClient) string {
	t.Helper()
	if !PostgresBaseAvailable() {
		if id, _, err := inspect(context.Background(), cli, PostgresBaseRef()); err == nil && id != "" {
			return PostgresBaseRef()
		}
		msg := "the PostgreSQL base image needs debootstrap and root (apt-get install debootstrap; .ci/run does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	ref, err := BuildPostgresBase(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("postgres base %s ready in %s", ref, time.Since(start).Round(time.Millisecond))
	return ref
}

func TestPostgresBaseRef(t *testing.T) {
	ref := PostgresBaseRef()
	if !strings.HasPrefix(ref, "gpustack-deploy/postgres-base:bookworm-") || len(ref) != len("gpustack-deploy/postgres-base:bookworm-")+12 {
		t.Errorf("ref %q", ref)
	}
}

func TestBuildPostgresBase(t *testing.T) {
	cli := engine(t)
	ref := needPostgresBase(t, cli)
	ctx := context.Background()
	info, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Labels[LabelPostgresBase] != postgresRecipeHash() {
		t.Errorf("labels %v", info.Config.Labels)
	}
	t.Logf("size %d MB", info.Size>>20)
	out := runOnce(t, cli, ref, "sh", "-c", "postgres --version && psql --version && pg_dump --version && id gpustack && stat -c '%u:%g %a' /run/postgresql && mariadbd --version && mysql --version && mysqldump --version && mysqladmin --version && mariadb-install-db --help | grep -q auth-root-authentication-method && test ! -e /var/lib/mysql && echo no-datadir")
	for _, want := range []string{"postgres (PostgreSQL) 15.", "psql (PostgreSQL) 15.", "pg_dump (PostgreSQL) 15.", "uid=9999(gpustack) gid=9999(gpustack)", "9999:9999 2775",
		"mariadbd  Ver 10.11.", "mysql  Ver 15.1 Distrib 10.11.", "mysqldump  Ver 10.19 Distrib 10.11.", "mysqladmin  Ver ", "Distrib 10.11.", "no-datadir"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Once per machine: a second call finds the tag.
	start := time.Now()
	if again, err := BuildPostgresBase(ctx, cli); err != nil || again != ref {
		t.Fatalf("again: %s %v", again, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second call took %s", d)
	}
}

// runOnce runs cmd in a throw-away container of ref and returns its output.
func runOnce(t *testing.T, cli client.APIClient, ref string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: ref, Cmd: cmd, Entrypoint: []string{}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	statusC, errC := cli.ContainerWait(ctx, resp.ID, container.WaitConditionNotRunning)
	select {
	case st := <-statusC:
		if st.StatusCode != 0 {
			t.Errorf("%v: exit %d: %s", cmd, st.StatusCode, logs(t, cli, resp.ID))
		}
	case err := <-errC:
		t.Fatal(err)
	}
	return logs(t, cli, resp.ID)
}

// TestLockFile: a second holder waits for the first; a cancelled wait
// gives up.
func TestLockFile(t *testing.T) {
	t.Setenv("GPUSTACK_EMULATOR_CACHE_DIR", t.TempDir())
	unlock, err := lockFile(context.Background(), "t.lock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, "t.lock"); err == nil {
		t.Fatal("second lock taken while the first is held")
	}
	got := make(chan error, 1)
	go func() {
		u, err := lockFile(context.Background(), "t.lock")
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter did not get the lock after unlock")
	}
}
