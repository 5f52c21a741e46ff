package doctor

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

func TestDiagnose(t *testing.T) {
	cases := []struct {
		name string
		in   Input
		// codes are the findings' codes in report order.
		codes   []string
		healthy bool
		// kinds are the options' kinds, best first.
		kinds []string
		// title and command are fragments of the first option.
		title, command string
	}{
		{
			name: "seed: hand-run main-cpu half-applied c45e397531d1 (by container name)",
			in: Input{Host: "default", Container: ctr("gpustack-hand", "gpustack/gpustack:main-cpu", "exited", 0, false),
				Image:    &Image{Ref: "gpustack/gpustack:main-cpu", Version: "main"},
				LogTail:  failedStart("(sqlite3.OperationalError) no such column: model_instances.resolved_path"),
				Database: sqlite(t, "c45e397531d1", resolvedPathGone), Backups: []backup.Manifest{goodBackup},
				BackupDir: "/srv/backups/demo", Data: "gpustack-demo-data"},
			codes: []string{CodeProbeMismatch, CodeNoSuchColumn, CodeExited, CodeDevTag},
			kinds: []string{KindRestore, KindFresh},
			title: "Restore backup 20261128T061702.000Z-e6bf9e067296 (taken 2026-11-28 06:17 UTC at v0.5.1-cpu)",
			command: "docker run --rm -v gpustack-demo-data:/var/lib/gpustack -v /srv/backups/demo/20261128T061702.000Z-e6bf9e067296:/backup:ro " +
				"--entrypoint sh gpustack/gpustack:v0.5.1-cpu -c 'cd /var/lib/gpustack && rm -f database.db-wal database.db-shm && " +
				"cp /backup/database.db /backup/token /backup/jwt_secret_key .'",
		},
		{
			name: "seed through the file: managed v0.5.1 stopped, main-cpu beside it on the volume",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "exited", 0, true),
				Database: sqlite(t, "c45e397531d1", resolvedPathGone), Backups: []backup.Manifest{goodBackup},
				Others: []Other{{Container: *ctr("gpustack-hand", "gpustack/gpustack:main-cpu", "exited", 0, false),
					Image: Image{Ref: "gpustack/gpustack:main-cpu"}, LogTail: failedStart("no such column: model_instances.resolved_path")}},
			}, "v0.5.1", "cpu"),
			codes:   []string{CodeProbeMismatch, CodeNoSuchColumn, CodeExited, CodeDevTag, CodeSharedVolume},
			kinds:   []string{KindRestore, KindFresh},
			title:   "Restore backup 20261128T061702.000Z-e6bf9e067296",
			command: "gpustack-deploy restore 20261128T061702.000Z-e6bf9e067296 -f gpustack.hcl",
		},
		{
			name: "downgrade: v0.5.1 on a database stamped by v0.6",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "exited", 0, true),
				LogTail:  failedStart("Can't locate revision identified by 'c45e397531d1'"),
				Database: sqlite(t, "c45e397531d1", nil), Backups: []backup.Manifest{goodBackup}}, "v0.5.1", "cpu"),
			codes:   []string{CodeUnknownRevisionLg, CodeExited, CodeAheadOfImage},
			kinds:   []string{KindPin, KindRestore},
			title:   "Pin v0.6.2-cpu, the release that wrote this database",
			command: `# in gpustack.hcl set version = "v0.6.2" and variant = "cpu"`,
		},
		{
			name: "cannot locate a dev-only revision",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "exited", 0, true),
				LogTail:  failedStart("Can't locate revision identified by 'bc310a40a89b'"),
				Database: observe.Database{Status: observe.DBRead, Revision: "bc310a40a89b", Tables: tablesAt(t, "e6bf9e067296", nil)},
				Backups:  []backup.Manifest{goodBackup}}, "v0.5.1", "cpu"),
			codes:   []string{CodeDevRevision, CodeUnknownRevisionLg, CodeExited},
			kinds:   []string{KindRestore, KindFresh},
			title:   "Restore backup",
			command: "gpustack-deploy restore 20261128T061702.000Z-e6bf9e067296 -f gpustack.hcl",
		},
		{
			name: "duplicate column: e6bf9e067296 half-applied (#1084)",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.5.0-cpu", "exited", 0, true),
				LogTail:  failedStart("(sqlite3.OperationalError) duplicate column name: categories"),
				Database: sqlite(t, "004c73a5c09e", nil, "models.categories"),
				Backups:  []backup.Manifest{manifest("20261127T100000.000Z-004c73a5c09e", "v0.4.1-cpu", "004c73a5c09e", t0.Add(-20*time.Hour), true)},
			}, "v0.5.0", "cpu"),
			codes:   []string{CodePartialMigration, CodeDuplicateColumn, CodeExited},
			kinds:   []string{KindRestore, KindFresh},
			title:   "Restore backup 20261127T100000.000Z-004c73a5c09e (taken 2026-11-27 10:00 UTC at v0.4.1-cpu)",
			command: "gpustack-deploy restore 20261127T100000.000Z-004c73a5c09e -f gpustack.hcl",
		},
		{
			name: "generic migration failure exits 0 (#2635): go back to the release of the stamp",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.7.0", "exited", 0, true),
				LogTail:  failedStart("Database migration failed: 'NoneType' object has no attribute 'get'"),
				Database: sqlite(t, "c45e397531d1", nil)}, "v0.7.0", ""),
			codes:   []string{CodeExited, CodeStartFailed},
			kinds:   []string{KindPin},
			title:   "Pin v0.6.2, the release that wrote this database",
			command: "gpustack-deploy apply -f gpustack.hcl",
		},
		{
			name: "stamped but the probe fails, no backup: start over last and only",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.6.0-cpu", "exited", 0, true),
				Database: sqlite(t, "c45e397531d1", resolvedPathGone)}, "v0.6.0", "cpu"),
			codes:   []string{CodeProbeMismatch, CodeExited},
			kinds:   []string{KindFresh},
			title:   "Start over with an empty data volume, keeping the model cache",
			command: "docker cp gpustack-demo:/var/lib/gpustack ./demo-data-before-redeploy",
		},
		{
			name: "unknown revision",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.7.1", "running", 0, true),
				Database: observe.Database{Status: observe.DBRead, Revision: "0123456789ab", Tables: tablesAt(t, "d19176de3b74", nil)}}, "v0.7.1", ""),
			codes: []string{CodeUnknownRevision},
			kinds: []string{KindFresh},
			title: "Start over",
		},
		{
			name: "dev tag on an intact database",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:main-cpu", "running", 0, true),
				Image: &Image{Ref: "gpustack/gpustack:main-cpu", Version: "main"}, Database: sqlite(t, "e6bf9e067296", nil)}, "main", "cpu"),
			codes:   []string{CodeDevTag},
			kinds:   []string{KindPin},
			title:   "Pin v0.5.1-cpu, the release that wrote this database",
			command: `# in gpustack.hcl set version = "v0.5.1" and variant = "cpu"`,
		},
		{
			name: "floating tag on an intact database",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:latest", "running", 0, true),
				Image: &Image{Ref: "gpustack/gpustack:latest", Version: "v0.7.1"}, Database: sqlite(t, "d19176de3b74", nil)}, "latest", ""),
			codes:   []string{CodeFloatingTag},
			kinds:   []string{KindPin},
			title:   "Pin v0.7.1, the release that wrote this database",
			command: `# in gpustack.hcl set version = "v0.7.1"`,
		},
		{
			name: "latest jumped to v2 on SQLite data: empty PostgreSQL beside database.db",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:latest", "running", 0, true),
				Image: &Image{Ref: "gpustack/gpustack:latest", Version: "v2.2.3"}, Database: pgData(false),
				LegacySQLite: &observe.Database{Status: observe.DBRead, Engine: catalog.EngineSQLite, Revision: "d19176de3b74", Tables: tablesAt(t, "d19176de3b74", nil)},
			}, "latest", ""),
			codes:   []string{CodeEraMismatch, CodeFloatingTag, CodeNotInspected},
			kinds:   []string{KindPin},
			title:   "Pin v0.7.1, the release that wrote this database",
			command: "docker run --rm -v gpustack-demo-data:/var/lib/gpustack --entrypoint sh gpustack/gpustack:v0.7.1 -c 'mv /var/lib/gpustack/postgresql /var/lib/gpustack/postgresql.v2-aside'",
		},
		{
			name: "latest jumped to v2, known from the log, before PostgreSQL was written",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:latest", "exited", 1, true),
				LogTail:  []string{logLine("gpustack.cmd.start", "INFO", "GPUStack version: v2.2.3 (1cfcbbf)")},
				Database: sqlite(t, "d19176de3b74", nil)}, "latest", ""),
			codes:   []string{CodeEraMismatch, CodeExited, CodeFloatingTag},
			kinds:   []string{KindPin},
			title:   "Pin v0.7.1",
			command: "gpustack-deploy apply -f gpustack.hcl",
		},
		{
			name: "v0.x image on v2 data",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.7", "running", 0, true),
				Image: &Image{Ref: "gpustack/gpustack:v0.7", Version: "v0.7.1"}, Database: pgData(true)}, "v0.7", ""),
			codes:   []string{CodeEraMismatch, CodeFloatingTag, CodeNotInspected},
			kinds:   []string{KindPin},
			title:   "Run the v2 release that wrote this data",
			command: "docker cp gpustack-demo:/var/lib/gpustack/postgresql ./gpustack-demo-postgresql-copy",
		},
		{
			name: "stopped by hand on the right release",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "exited", 0, true),
				Database: sqlite(t, "e6bf9e067296", nil)}, "v0.5.1", "cpu"),
			codes:   []string{CodeExited},
			kinds:   []string{KindStart},
			title:   "Start v0.5.1-cpu again",
			command: "gpustack-deploy apply -f gpustack.hcl",
		},
		{
			name: "restart loop on a dev revision",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.7.1", "restarting", 0, true),
				LogTail:  failedStart("Can't locate revision identified by 'ddb9eb4a7eab'"),
				Database: observe.Database{Status: observe.DBRead, Revision: "ddb9eb4a7eab", Tables: tablesAt(t, "d19176de3b74", nil)}}, "v0.7.1", ""),
			codes: []string{CodeDevRevision, CodeUnknownRevisionLg, CodeRestarting},
			kinds: []string{KindFresh},
			title: "Start over",
		},
		{
			name: "unhealthy while running: no known signature",
			in: hcl(Input{Container: func() *observe.Container {
				c := ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "running", 0, true)
				c.Health = "unhealthy: HTTP 503"
				return c
			}(), Database: sqlite(t, "e6bf9e067296", nil)}, "v0.5.1", "cpu"),
			codes:   []string{CodeUnhealthy},
			kinds:   []string{KindInspect},
			title:   "Read the whole log before changing anything",
			command: "docker logs --tail 500 gpustack-demo",
		},
		{
			name:  "no container yet",
			in:    hcl(Input{Database: sqlite(t, "e6bf9e067296", nil)}, "v0.5.1", "cpu"),
			codes: []string{CodeAbsent},
			kinds: []string{KindStart},
			title: "Create the v0.5.1-cpu container with apply",
		},
		{
			name: "hand-run container holds the deployment's name",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:main-cpu", "running", 0, false),
				Database: sqlite(t, "e6bf9e067296", nil)}, "v0.5.1", "cpu"),
			codes:   []string{CodeUnmanaged, CodeDevTag, CodeConfigDrift},
			kinds:   []string{KindPin},
			title:   "Pin v0.5.1-cpu",
			command: "docker rename gpustack-demo gpustack-demo-by-hand",
		},
		{
			name: "another container rejected its arguments; the deployment's container is only stopped",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "exited", 0, true),
				Database: sqlite(t, "e6bf9e067296", nil), Backups: []backup.Manifest{goodBackup},
				Others: []Other{{Container: *ctr("gpustack-hand", "gpustack/gpustack:main-cpu", "exited", 2, false),
					Image: Image{Ref: "gpustack/gpustack:main-cpu"}, LogTail: []string{"gpustack: error: unrecognized arguments: start"}}},
			}, "v0.5.1", "cpu"),
			codes:   []string{CodeExited, CodeBadArguments, CodeDevTag, CodeSharedVolume},
			kinds:   []string{KindStart},
			title:   "Start v0.5.1-cpu again",
			command: "gpustack-deploy apply -f gpustack.hcl",
		},
		{
			name: "dev tag started by hand on an intact database (by container name)",
			in: Input{Host: "default", Container: ctr("gpustack-hand", "gpustack/gpustack:main-cpu", "running", 0, false),
				Image:    &Image{Ref: "gpustack/gpustack:main-cpu", Version: "main", Env: []string{"PATH=/usr/bin"}},
				Database: sqlite(t, "e6bf9e067296", nil), Data: "gpustack-demo-data"},
			codes: []string{CodeDevTag},
			kinds: []string{KindPin},
			title: "Pin v0.5.1-cpu",
			command: "docker run -d --name gpustack-hand --restart unless-stopped -p 127.0.0.1:18080:80 -v gpustack-demo-data:/var/lib/gpustack " +
				"-e GPUSTACK_BOOTSTRAP_PASSWORD gpustack/gpustack:v0.5.1-cpu --disable-worker",
		},
		{
			name: "damaged database file",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "exited", 0, true),
				Database: observe.Database{Status: observe.DBUnknown, Engine: catalog.EngineSQLite,
					Reason: "read the database copy: file is not a database"},
				Backups: []backup.Manifest{goodBackup}}, "v0.5.1", "cpu"),
			codes:   []string{CodeUnreadable, CodeExited},
			kinds:   []string{KindRestore, KindFresh},
			title:   "Restore backup",
			command: "gpustack-deploy restore 20261128T061702.000Z-e6bf9e067296 -f gpustack.hcl",
		},
		{
			name: "volume out of reach",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "exited", 0, true),
				Database: observe.Database{Status: observe.DBUnknown, Reason: "inspect container: permission denied"}}, "v0.5.1", "cpu"),
			codes: []string{CodeExited, CodeUnreadable},
			kinds: []string{KindInspect},
			title: "Read the whole log",
		},
		{
			name: "a neighbour's old failure after the deployment came back",
			in: hcl(Input{Container: func() *observe.Container {
				c := ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "running", 0, true)
				c.StartedAt, c.Health = started.Add(time.Hour), "ok"
				return c
			}(), Database: sqlite(t, "e6bf9e067296", nil),
				Others: []Other{{Container: *ctr("gpustack-hand", "gpustack/gpustack:main-cpu", "exited", 0, false),
					Image: Image{Ref: "gpustack/gpustack:main-cpu"}, LogTail: failedStart("no such column: model_instances.resolved_path")}},
			}, "v0.5.1", "cpu"),
			codes:   []string{CodeDevTag, CodeSharedVolume, CodeNoSuchColumn},
			kinds:   []string{KindCleanup},
			title:   "Remove the other containers that mount the data volume",
			command: "docker rm gpustack-hand",
		},
		{
			name: "healthy",
			in: hcl(Input{Container: func() *observe.Container {
				c := ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "running", 0, true)
				c.Health = "ok"
				return c
			}(), Image: &Image{Ref: "gpustack/gpustack:v0.5.1-cpu", Version: "v0.5.1"},
				LogTail:  []string{logLine("gpustack.server.server", "INFO", "Running database migration."), logLine("gpustack.server.server", "INFO", "Database migration completed.")},
				Database: sqlite(t, "e6bf9e067296", nil), Backups: []backup.Manifest{goodBackup}}, "v0.5.1", "cpu"),
			codes:   []string{},
			healthy: true,
			kinds:   []string{},
		},
		{
			name: "healthy after an earlier failed start",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.5.1-cpu", "running", 0, true),
				LogTail: append(failedStart("duplicate column name: categories"),
					logLine("gpustack.server.server", "INFO", "Running database migration."),
					logLine("gpustack.server.server", "INFO", "Database migration completed.")),
				Database: sqlite(t, "e6bf9e067296", nil)}, "v0.5.1", "cpu"),
			codes:   []string{},
			healthy: true,
			kinds:   []string{},
		},
		{
			name: "v2 deployment, running, not inspected",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v2.2.3", "running", 0, true),
				Database: pgData(false)}, "v2.2.3", ""),
			codes:   []string{CodeNotInspected},
			healthy: true,
			kinds:   []string{},
		},
		{
			name: "a worker: no database to diagnose",
			in: func() Input {
				in := hcl(Input{Container: ctr("gpustack-w1", "gpustack/gpustack:v2.2.3", "running", 0, true),
					Image: &Image{Ref: "gpustack/gpustack:v2.2.3", Version: "v2.2.3"}, Database: observe.Database{Status: observe.DBAbsent}}, "v2.2.3", "")
				in.Worker = true
				return in
			}(),
			codes:   []string{},
			healthy: true,
			kinds:   []string{},
		},
		{
			// observe reads v2's PostgreSQL: it is not SQLite data under a v2 image.
			name: "v2 deployment, running, its PostgreSQL read at the release head",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v2.2.3", "running", 0, true),
				Image: &Image{Ref: "gpustack/gpustack:v2.2.3", Version: "v2.2.3"}, Database: pgRead("c4d7e8f9a0b1")}, "v2.2.3", ""),
			codes:   []string{},
			healthy: true,
			kinds:   []string{},
		},
		{
			name: "a v0.x image on v2 data that observe read",
			in: hcl(Input{Container: ctr("gpustack-demo", "gpustack/gpustack:v0.7.1-cpu", "exited", 0, true),
				Image: &Image{Ref: "gpustack/gpustack:v0.7.1-cpu", Version: "v0.7.1"}, Database: pgRead("c4d7e8f9a0b1")}, "v0.7.1", "cpu"),
			codes: []string{CodeEraMismatch, CodeExited},
			kinds: []string{KindPin},
			title: "Run the v2 release that wrote this data",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Diagnose(tc.in, catalog.Default())
			var codes, kinds []string
			for _, f := range r.Findings {
				codes = append(codes, f.Code)
			}
			for i, o := range r.Options {
				kinds = append(kinds, o.Kind)
				if o.Rank != i+1 {
					t.Errorf("option %d has rank %d", i, o.Rank)
				}
			}
			if codes == nil {
				codes = []string{}
			}
			if kinds == nil {
				kinds = []string{}
			}
			if !reflect.DeepEqual(codes, tc.codes) {
				t.Errorf("codes = %q, want %q", codes, tc.codes)
			}
			if r.Healthy != tc.healthy {
				t.Errorf("healthy = %t, want %t", r.Healthy, tc.healthy)
			}
			if !reflect.DeepEqual(kinds, tc.kinds) {
				t.Errorf("option kinds = %q, want %q", kinds, tc.kinds)
			}
			if len(r.Options) == 0 {
				return
			}
			first := r.Options[0]
			if !strings.Contains(first.Title, tc.title) {
				t.Errorf("first option title = %q, want it to contain %q", first.Title, tc.title)
			}
			if tc.command != "" && !contains(first.Commands, tc.command) {
				t.Errorf("first option commands = %q, want %q among them", first.Commands, tc.command)
			}
			if last := r.Options[len(r.Options)-1]; len(r.Options) > 1 && contains(kinds[:len(kinds)-1], KindFresh) {
				t.Errorf("fresh redeploy must come last, got %q (last %q)", kinds, last.Kind)
			}
		})
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
