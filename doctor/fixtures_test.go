package doctor

import (
	"strings"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

var (
	t0      = time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	started = t0.Add(2 * time.Hour)
)

// tablesAt is the schema a complete database at rev has, without drop
// ("table" or "table.column") and with add ("table.column").
func tablesAt(t *testing.T, rev string, drop []string, add ...string) map[string][]string {
	t.Helper()
	r, ok := catalog.Default().Revision(rev)
	if !ok {
		t.Fatalf("revision %s not in the catalog", rev)
	}
	out := map[string][]string{"alembic_version": {"version_num"}}
	for table, cols := range r.Probe().Tables {
		out[table] = append([]string(nil), cols...)
	}
	for _, x := range drop {
		table, col, ok := strings.Cut(x, ".")
		if !ok {
			delete(out, table)
			continue
		}
		var kept []string
		for _, c := range out[table] {
			if c != col {
				kept = append(kept, c)
			}
		}
		out[table] = kept
	}
	for _, x := range add {
		table, col, _ := strings.Cut(x, ".")
		out[table] = append(out[table], col)
	}
	return out
}

func sqlite(t *testing.T, rev string, drop []string, add ...string) observe.Database {
	return observe.Database{Status: observe.DBRead, Engine: catalog.EngineSQLite, Revision: rev, Tables: tablesAt(t, rev, drop, add...)}
}

func pgData(done bool) observe.Database {
	return observe.Database{Status: observe.DBUnsupported, Engine: catalog.EngineEmbeddedPostgres, MigrationDone: done,
		Reason: "the data volume holds GPUStack v2's embedded PostgreSQL"}
}

// pgRead is v2's embedded PostgreSQL as observe reads it, at rev.
func pgRead(rev string) observe.Database {
	return observe.Database{Status: observe.DBRead, Engine: catalog.EngineEmbeddedPostgres, Revision: rev,
		Tables: map[string][]string{"alembic_version": {"version_num"}}}
}

func ctr(name, ref, state string, exit int, managed bool) *observe.Container {
	return &observe.Container{ID: name + "-id", Name: name, Image: ref, State: state, ExitCode: exit, StartedAt: started,
		Managed: managed, Restart: "unless-stopped",
		Mounts: []observe.Mount{{Source: "gpustack-demo-data", Destination: "/var/lib/gpustack"}},
		Ports:  []observe.Port{{HostIP: "127.0.0.1", HostPort: 18080, ContainerPort: 80}},
		Args:   []string{"--disable-worker"}, Env: []string{"PATH=/usr/bin", "GPUSTACK_BOOTSTRAP_PASSWORD=s3cret"}}
}

func logLine(logger, level, msg string) string {
	return "2026-11-28T08:00:01+00:00 - " + logger + " - " + level + " - " + msg
}

func failedStart(cause string) []string {
	return []string{
		logLine("gpustack.server.server", "INFO", "Running database migration."),
		logLine("gpustack.cmd.start", "ERROR", "Error running server: "+cause),
		logLine("gpustack.cmd.start", "INFO", "Server has shut down."),
	}
}

func manifest(id, version, rev string, created time.Time, verified bool) backup.Manifest {
	return backup.Manifest{Format: 1, ID: id, Deployment: "demo", Host: "default", Created: created, Version: version,
		Image: "gpustack/gpustack:" + version, Engine: "sqlite", Revision: rev, Verified: verified,
		Rows:  map[string]int64{"users": 3, "models": 4, "model_instances": 4},
		Files: []backup.File{{Name: "database.db"}, {Name: "token"}, {Name: "jwt_secret_key"}}}
}

var (
	resolvedPathGone = []string{"model_instances.resolved_path", "model_instances.restart_count", "model_instances.last_restart_time", "model_files", "modelinstancemodelfilelink"}
	goodBackup       = manifest("20261128T061702.000Z-e6bf9e067296", "v0.5.1-cpu", "e6bf9e067296", t0.Add(17*time.Minute), true)
)

// hcl fills the configuration side of an input.
func hcl(in Input, version, variant string) Input {
	in.Deployment, in.Host = "demo", "default"
	in.ConfigFile, in.ConfigVersion, in.ConfigVariant = "gpustack.hcl", version, variant
	in.Data = "gpustack-demo-data"
	return in
}
