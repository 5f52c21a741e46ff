package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"
)

// head212 is the Alembic head of v2.1.2.
const head212 = "8ad0f94c92e8"

// v2Deployment is a v2 deployment with its model cache in the data volume.
func v2Deployment(t testing.TB, prefix, version string) *deployment {
	t.Helper()
	needPostgres(t)
	return newDeployment(t, prefix, v2File(version, ""))
}

// v2File is a v2 deployment's file; body goes inside the gpustack block.
func v2File(version, body string) options {
	return options{version: version, variant: "none", args: "[]", noCache: true, body: body, health: "90s"}
}

// v2Manifest is the part of a v2 backup's manifest.json the tests read.
type v2Manifest struct {
	ID        string           `json:"id"`
	Version   string           `json:"version"`
	Revision  string           `json:"revision"`
	Engine    string           `json:"engine"`
	Method    string           `json:"method"`
	PGDir     string           `json:"pg_dir"`
	PGVersion string           `json:"pg_version"`
	Rows      map[string]int64 `json:"rows"`
	Verified  bool             `json:"verified"`
	Files     []struct {
		Name string `json:"name"`
	} `json:"files"`
}

// v2Backups reads the manifests of the deployment's backups, oldest first.
func (d *deployment) v2Backups() []v2Manifest {
	d.t.Helper()
	var out []v2Manifest
	for _, m := range d.backupList() {
		b, err := os.ReadFile(filepath.Join(d.backups, m.ID, "manifest.json"))
		if err != nil {
			d.t.Fatal(err)
		}
		var v v2Manifest
		if err := json.Unmarshal(b, &v); err != nil {
			d.t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestV2UpgradeTakesVerifiedPGFilesBackup installs v2.1.2, fills it, plans
// (the plan shows the revision read from PostgreSQL) and upgrades to
// v2.2.3 with a verified pg-files backup of the stopped cluster.
func TestV2UpgradeTakesVerifiedPGFilesBackup(t *testing.T) {
	d := v2Deployment(t, "v2pgf", "v2.1.2")
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	d.expectRunning("v2.1.2", head212)
	seeded := d.seed("--models", "7", "--instances", "11", "--users", "3")

	p := d.gsd("plan", "--var", "version=v2.2.3")
	expectCode(t, p, 0)
	expectOutput(t, p, "database at "+head212+" (embedded-postgresql)", "back up database", "PostgreSQL files")
	var js struct {
		Deployments []struct {
			Actions []struct {
				Method string `json:"method"`
			} `json:"actions"`
		} `json:"deployments"`
	}
	pj := d.gsd("plan", "--json", "--var", "version=v2.2.3")
	expectCode(t, pj, 0)
	if err := json.Unmarshal([]byte(pj.stdout), &js); err != nil {
		t.Fatalf("plan --json: %v", err)
	}
	var method string
	for _, pd := range js.Deployments {
		for _, a := range pd.Actions {
			if a.Method != "" {
				method = a.Method
			}
		}
	}
	if method != "pg-files" {
		t.Errorf("the planned backup's method is %q, want pg-files", method)
	}

	r := d.gsd("apply", "--auto-approve", "--var", "version=v2.2.3")
	expectCode(t, r, 0)
	expectOutput(t, r, "verified (pg-files")
	d.expectRunning("v2.2.3", head223)
	after := d.rows()
	for _, table := range []string{"models", "model_instances"} {
		if after[table] != seeded[table] {
			t.Errorf("table %s: %d rows after the upgrade, %d before", table, after[table], seeded[table])
		}
	}

	list := d.v2Backups()
	if len(list) != 1 {
		t.Fatalf("%d backups, want 1: %+v", len(list), list)
	}
	m := list[0]
	if !m.Verified || m.Method != "pg-files" || m.Engine != "embedded-postgresql" || m.Revision != head212 || m.PGDir != "postgresql/data" || m.PGVersion == "" {
		t.Errorf("backup manifest %+v", m)
	}
	expectRowsKept(t, map[string]int64{"models": seeded["models"], "model_instances": seeded["model_instances"], "users": seeded["users"]}, m.Rows)
	names := map[string]bool{}
	for _, f := range m.Files {
		names[f.Name] = true
	}
	for _, want := range []string{"postgresql-data.tar", "token", "jwt_secret_key", "postgres_root_pass"} {
		if !names[want] {
			t.Errorf("backup lacks %s: %+v", want, m.Files)
		}
	}
	st, err := os.Stat(filepath.Join(d.backups, m.ID, "postgresql-data.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("postgresql-data.tar has mode %v, want 0600", st.Mode().Perm())
	}
	bl := d.gsd("backups")
	expectCode(t, bl, 0)
	expectOutput(t, bl, m.ID, "pg-files")
}

// TestV2FailedMigrationRestoresPGFiles makes v2.2.3's migration fail: the
// apply exits 3, the pg-files backup is restored, and v2.1.2 runs again on
// the rows it had.
func TestV2FailedMigrationRestoresPGFiles(t *testing.T) {
	needPostgres(t)
	o := v2File("v2.1.2", `  env = { GPUSTACK_EMULATOR_FAIL_MIGRATION = var.fail }`)
	o.variables = `variable "fail" { default = "" }`
	d := newDeployment(t, "v2fail", o)
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	seeded := d.seed("--models", "4", "--instances", "6")
	before := d.rows()

	r := d.gsd("apply", "--auto-approve", "--var", "version=v2.2.3", "--var", "fail="+head223)
	expectCode(t, r, 3)
	expectOutput(t, r, "rolled back", "Database migration failed")
	d.expectRunning("v2.1.2", head212)
	expectRowsKept(t, before, d.rows())
	if d.rows()["models"] != seeded["models"] {
		t.Errorf("models: %d rows, want %d", d.rows()["models"], seeded["models"])
	}
	list := d.v2Backups()
	if len(list) != 1 || !list[0].Verified || list[0].Method != "pg-files" {
		t.Errorf("backups after the failed upgrade: %+v", list)
	}
	// The data directory is back in the hands of PostgreSQL's user.
	out := execIn(t, d.container, "stat", "-c", "%u:%g %a", "/var/lib/gpustack/postgresql/data")
	if strings.TrimSpace(out) != "9999:9999 700" {
		t.Errorf("postgresql/data after the rollback: %s, want 9999:9999 700", out)
	}
}

// TestV2BackupRestoreRoundTrip takes an on-demand backup by each method,
// deletes rows, restores the backup and finds the rows of the backup again.
func TestV2BackupRestoreRoundTrip(t *testing.T) {
	for _, method := range []string{"pg-files", "pg-dump", "volume"} {
		t.Run(method, func(t *testing.T) {
			d := v2Deployment(t, "v2rt", "v2.2.3")
			expectCode(t, d.gsd("apply", "--auto-approve"), 0)
			d.seed("--models", "5", "--instances", "3")
			atBackup := d.rows()

			r := d.gsd("backup", "--method", method)
			expectCode(t, r, 0)
			expectOutput(t, r, "verified ("+method+")")
			list := d.v2Backups()
			if len(list) != 1 || list[0].Method != method || !list[0].Verified || list[0].Revision != head223 {
				t.Fatalf("backups: %+v", list)
			}
			id := list[0].ID
			d.waitHealthy() // started again (pg-files) or never stopped (pg-dump)
			d.expectRunning("v2.2.3", head223)

			execIn(t, d.container, "gpustack", "emulator", "sql", "DELETE FROM model_instances")
			if n := d.rows()["model_instances"]; n != 0 || atBackup["model_instances"] == 0 {
				t.Fatalf("model_instances: %d rows after the delete, %d before", n, atBackup["model_instances"])
			}
			rs := d.gsd("restore", id, "--auto-approve")
			expectCode(t, rs, 0)
			d.expectRunning("v2.2.3", head223)
			restored := d.rows()
			for _, table := range []string{"models", "model_instances", "principals"} {
				if restored[table] != atBackup[table] {
					t.Errorf("table %s: %d rows after the restore, %d in the backup", table, restored[table], atBackup[table])
				}
			}
			// A volume restore empties the whole volume: its safety copy
			// keeps the whole volume too.
			wantSafety := "pg-files"
			if method == "volume" {
				wantSafety = "volume"
			}
			var safety bool
			for _, m := range d.v2Backups() {
				if strings.HasSuffix(m.ID, "-safety") && m.Method == wantSafety && !m.Verified {
					safety = true
				}
			}
			if !safety {
				t.Errorf("no %s safety copy was kept: %+v", wantSafety, d.v2Backups())
			}
		})
	}
}

// TestV2ObserveStoppedLeavesVolumeUntouched reads a stopped v2 database
// (plan, status) through a one-off container and checks that not one byte,
// owner, mode or time of the data volume changed.
func TestV2ObserveStoppedLeavesVolumeUntouched(t *testing.T) {
	d := v2Deployment(t, "v2ro", "v2.2.3")
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	d.seed("--models", "2")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	timeout := 30
	if err := docker.ContainerStop(ctx, d.container, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	before := volumeDigest(t, d.data)

	p := d.gsd("plan")
	expectCode(t, p, 0)
	expectOutput(t, p, "database at "+head223+" (embedded-postgresql)")
	if st := d.status(); st.Revision != head223 || st.State != "exited" {
		t.Errorf("status of the stopped deployment: %+v", st)
	}
	if after := volumeDigest(t, d.data); after != before {
		t.Errorf("reading the stopped database changed the volume:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// waitHealthy waits up to a minute for /healthz to answer 200.
func (d *deployment) waitHealthy() {
	d.t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", d.port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.t.Fatalf("%s did not answer /healthz within a minute", d.container)
}

// volumeDigest lists every entry of a volume with its owner, mode, size,
// mtime and sha256, from a read-only one-off container of the v2 image.
func volumeDigest(t testing.TB, volume string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := `cd /v && find . -printf '%p %U:%G %m %s %T@\n' | sort && find . -type f -exec sha256sum {} + | sort`
	created, err := docker.ContainerCreate(ctx, &container.Config{
		Image: repository + ":v2.2.3", Entrypoint: []string{"/bin/sh", "-c", script}, User: "0:0",
		Labels: map[string]string{labelRole: "helper"},
	}, &container.HostConfig{NetworkMode: "none", Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: volume, Target: "/v", ReadOnly: true}}}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer docker.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	wait, errc := docker.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-wait:
		if res.StatusCode != 0 {
			t.Fatalf("digest of %s: exit %d", volume, res.StatusCode)
		}
	case err := <-errc:
		t.Fatal(err)
	}
	rc, err := docker.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, rc); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() == 0 {
		t.Fatalf("digest of %s is empty: %s", volume, stderr.String())
	}
	return stdout.String()
}

// TestV2LegacyPGDirIsRead moves a stopped v2 data volume's PGDATA to
// v2.0.0's postgres/data (#3676): observe finds it there, and a pg-files
// backup records that it came from there.
func TestV2LegacyPGDirIsRead(t *testing.T) {
	d := v2Deployment(t, "v2legacy", "v2.2.3")
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	d.seed("--models", "3")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	timeout := 30
	if err := docker.ContainerStop(ctx, d.container, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	runInVolume(t, d.data, "mkdir -p /v/postgres && mv /v/postgresql/data /v/postgres/data && rmdir /v/postgresql")

	p := d.gsd("plan")
	expectCode(t, p, 0)
	expectOutput(t, p, "database at "+head223+" (embedded-postgresql)")
	r := d.gsd("backup")
	expectCode(t, r, 0)
	expectOutput(t, r, "verified (pg-files)")
	list := d.v2Backups()
	if len(list) != 1 || list[0].PGDir != "postgres/data" || list[0].Rows["models"] < 3 {
		t.Errorf("backup of the legacy PGDATA: %+v", list)
	}
}

// runInVolume runs a shell script as root in a one-off container of the
// v2 image with the volume mounted read-write at /v.
func runInVolume(t testing.TB, volume, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := docker.ContainerCreate(ctx, &container.Config{
		Image: repository + ":v2.2.3", Entrypoint: []string{"/bin/sh", "-c", script}, User: "0:0",
		Labels: map[string]string{labelRole: "helper"},
	}, &container.HostConfig{NetworkMode: "none", Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: volume, Target: "/v"}}}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer docker.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	wait, errc := docker.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-wait:
		if res.StatusCode != 0 {
			t.Fatalf("%s in %s: exit %d", script, volume, res.StatusCode)
		}
	case err := <-errc:
		t.Fatal(err)
	}
}
