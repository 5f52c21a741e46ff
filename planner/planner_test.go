package planner

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/planner/plantest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func planOne(t *testing.T, d config.Deployment, od *observe.Deployment) *plan.Plan {
	t.Helper()
	p, err := Plan(&config.Desired{Deployments: []config.Deployment{d}},
		&observe.Observed{Deployments: map[string]*observe.Deployment{d.Name: od}}, catalog.Default())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the desired deployment and what was observed.
		setup func(t *testing.T) (config.Deployment, *observe.Deployment)
		want  string
	}{
		{
			name: "fresh install",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.Deployment("v0.5.1", "cpu")
				return d, plantest.Absent(d)
			},
			want: `prod@default:
  pull image gpustack/gpustack:v0.5.1-cpu [the image is not on the host]
  create volume gpustack-prod-data [the volume does not exist]
  create volume gpustack-prod-cache [the volume does not exist]
  create container gpustack-prod ( -> v0.5.1-cpu) [the deployment has no container yet]
  migrate database e6bf9e067296 ( -> e6bf9e067296) [GPUStack creates the database at its first start]
  verify gpustack-prod ( -> e6bf9e067296) [a new container must prove it works]
`,
		},
		{
			name: "no-op",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.Deployment("v0.5.1", "cpu")
				return d, plantest.Running(t, d, "e6bf9e067296")
			},
			want: "prod@default:\n",
		},
		{
			name: "upgrade one revision",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				old := plantest.Deployment("v0.4.1", "cpu")
				od := plantest.Running(t, old, "004c73a5c09e")
				d := plantest.Deployment("v0.5.1", "cpu")
				od.Image = nil
				return d, od
			},
			want: `prod@default:
  pull image gpustack/gpustack:v0.5.1-cpu [the image is not on the host]
  back up database gpustack-prod-data (004c73a5c09e -> ) {sqlite} [the database is behind the target release: /backups]
  replace container gpustack-prod (v0.4.1-cpu -> v0.5.1-cpu) [the version changes]
  migrate database e6bf9e067296 (004c73a5c09e -> e6bf9e067296) [the database is behind the target release]
  verify gpustack-prod ( -> e6bf9e067296) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
`,
		},
		{
			name: "upgrade across the cache-moving revision warns",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.4.1", "cpu"), "004c73a5c09e")
				d := plantest.Deployment("v0.6.0", "cpu")
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:new"}
				return d, od
			},
			want: `prod@default:
  back up database gpustack-prod-data (004c73a5c09e -> ) {sqlite} [the database is behind the target release: /backups]
  replace container gpustack-prod (v0.4.1-cpu -> v0.6.0-cpu) [the version changes]
  migrate database c45e397531d1 (004c73a5c09e -> c45e397531d1) [the database is behind the target release]
  verify gpustack-prod ( -> c45e397531d1) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
  WARNING revision c45e397531d1 deletes data
  WARNING revision c45e397531d1 changes the model cache
`,
		},
		{
			name: "dev tag refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.5.1", "cpu"), "e6bf9e067296")
				return plantest.Deployment("main", "cpu"), od
			},
			want: "prod@default:\n  REFUSED dev-tag: \"main-cpu\" is a development tag\n",
		},
		{
			name: "dev tag allowed by policy",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.5.1", "cpu"), "e6bf9e067296")
				d := plantest.Deployment("main", "cpu")
				d.Policy.AllowDev = true
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:main"}
				return d, od
			},
			want: `prod@default:
  back up database gpustack-prod-data (e6bf9e067296 -> ) {sqlite} [the image changes, so the database must be saved first: /backups]
  replace container gpustack-prod (v0.5.1-cpu -> main-cpu) [the version changes]
  migrate database unknown (e6bf9e067296 -> unknown) [the image changes, so the database must be saved first]
  verify gpustack-prod [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
  WARNING main-cpu is a development image (allowed by policy)
`,
		},
		{
			name: "release candidate refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.Deployment("v0.7.1rc1", "cpu")
				return d, plantest.Absent(d)
			},
			want: "prod@default:\n  REFUSED prerelease-tag: \"v0.7.1rc1-cpu\" is a release candidate\n",
		},
		{
			name: "floating tag refused, pin from the local image",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.Deployment("latest", "cpu")
				od := plantest.Absent(d)
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:l", Version: "v0.7.1"}
				return d, od
			},
			want: "prod@default:\n  REFUSED floating-tag: \"latest-cpu\" is a floating tag\n",
		},
		{
			name: "database ahead of the target refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.6.0", "cpu"), "c45e397531d1")
				return plantest.Deployment("v0.5.1", "cpu"), od
			},
			want: "prod@default:\n  REFUSED database-ahead: the database is at revision c45e397531d1, newer than v0.5.1 (head e6bf9e067296)\n",
		},
		{
			name: "same-revision downgrade refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.5.1", "cpu"), "e6bf9e067296")
				return plantest.Deployment("v0.5.0", "cpu"), od
			},
			want: "prod@default:\n  REFUSED downgrade: going from v0.5.1 back to v0.5.0 is a downgrade\n",
		},
		{
			name: "same-revision downgrade allowed by policy",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.5.1", "cpu"), "e6bf9e067296")
				d := plantest.Deployment("v0.5.0", "cpu")
				d.Policy.AllowDowngrade = true
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:v050"}
				return d, od
			},
			want: `prod@default:
  back up database gpustack-prod-data (e6bf9e067296 -> ) {sqlite} [the image changes, so the database must be saved first: /backups]
  replace container gpustack-prod (v0.5.1-cpu -> v0.5.0-cpu) [the version changes]
  verify gpustack-prod ( -> e6bf9e067296) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
`,
		},
		{
			name: "dev-only revision refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.5.1", "cpu"), "e6bf9e067296")
				od.Database.Revision = "a7c1b20f9d3e"
				return plantest.Deployment("v0.6.0", "cpu"), od
			},
			want: "prod@default:\n  REFUSED dev-revision: the database is stamped with a7c1b20f9d3e, a revision that only ever existed on development images\n",
		},
		{
			name: "unknown revision refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.5.1", "cpu"), "e6bf9e067296")
				od.Database.Revision = "ffffffffffff"
				return plantest.Deployment("v0.6.0", "cpu"), od
			},
			want: "prod@default:\n  REFUSED unknown-revision: the database is stamped with ffffffffffff, a revision this catalog does not know\n",
		},
		{
			name: "stamped but missing resolved_path (#1900) refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.6.0", "cpu"), "c45e397531d1")
				od.Database.Tables["model_instances"] = without(od.Database.Tables["model_instances"], "resolved_path", "restart_count", "last_restart_time")
				delete(od.Database.Tables, "model_files")
				return plantest.Deployment("v0.6.1", "cpu"), od
			},
			want: "prod@default:\n  REFUSED probe-mismatch: the database is stamped c45e397531d1 but lacks table model_files, model_instances.last_restart_time, model_instances.resolved_path, model_instances.restart_count\n",
		},
		{
			name: "half-applied next revision (#1084) refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.4.1", "cpu"), "004c73a5c09e")
				od.Database.Tables["models"] = append(od.Database.Tables["models"], "categories")
				return plantest.Deployment("v0.5.1", "cpu"), od
			},
			want: "prod@default:\n  REFUSED partial-migration: the database is stamped 004c73a5c09e but already has models.categories from the next revision\n",
		},
		{
			name: "container not ours refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.Deployment("v0.5.1", "cpu")
				od := plantest.Running(t, d, "e6bf9e067296")
				od.Container.Managed = false
				return d, od
			},
			want: "prod@default:\n  REFUSED unmanaged-container: a container named gpustack-prod exists but was not created by gpustack-deploy\n",
		},
		{
			name: "image missing with pull never refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.Deployment("v0.5.1", "cpu")
				d.Policy.Pull = config.PullNever
				return d, plantest.Absent(d)
			},
			want: "prod@default:\n  REFUSED image-unavailable: image gpustack/gpustack:v0.5.1-cpu is not on the host and policy pull = \"never\"\n",
		},
		{
			name: "stopped container is started",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.Deployment("v0.5.1", "cpu")
				od := plantest.Running(t, d, "e6bf9e067296")
				od.Container.State, od.Container.Health = "exited", ""
				return d, od
			},
			want: `prod@default:
  start container gpustack-prod [the container is not running: exited]
  verify gpustack-prod ( -> e6bf9e067296) [a new container must prove it works]
`,
		},
		{
			name: "env change replaces without backup",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.Deployment("v0.5.1", "cpu")
				od := plantest.Running(t, d, "e6bf9e067296")
				d.Env = map[string]config.Value{"GPUSTACK_DEBUG": {S: "true"}}
				return d, od
			},
			want: `prod@default:
  replace container gpustack-prod (v0.5.1-cpu -> v0.5.1-cpu) [the configuration changed: env GPUSTACK_DEBUG]
  verify gpustack-prod ( -> e6bf9e067296) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
`,
		},
		{
			name: "v0.x data to v2: whole-volume backup, migrate data, recreate without the switch, verify",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.7.1", "cpu"), "d19176de3b74")
				od.Database.Rows = plantest.JumpRows()
				d := plantest.V2Deployment("v2.2.3")
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:v2"}
				return d, od
			},
			want: `prod@default:
  back up database gpustack-prod-data (d19176de3b74 -> ) {volume} [the data volume holds v0.x SQLite data and the target is v2, which keeps its data in PostgreSQL: /backups]
  migrate data to PostgreSQL gpustack-prod-data (d19176de3b74 -> c4d7e8f9a0b1) [the data volume holds v0.x SQLite data and the target is v2, which keeps its data in PostgreSQL: SQLite is brought to d19176de3b74 and copied into PostgreSQL, which v2 then upgrades to c4d7e8f9a0b1; 1591 rows: system_loads 1440, workers 2, users 3, api_keys 4, model_files 5, models 5, model_instances 6, modelinstancemodelfilelink 6, model_usages 120]
  replace container gpustack-prod (v2.2.3 -> v2.2.3) [the migration flag must not stay set for later starts: without GPUSTACK_DATA_MIGRATION]
  verify gpustack-prod ( -> c4d7e8f9a0b1) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
  WARNING revision 2aed534bd7b2 deletes data
  WARNING v2 drops the Ollama model source, llama-box and venv-based custom backends
  WARNING v2 has no Windows or macOS workers
`,
		},
		{
			name: "v0.x data from v0.5.1 to v2 crosses the v0.x hazards too",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.5.1", "cpu"), "e6bf9e067296")
				d := plantest.V2Deployment("v2.1.2")
				d.Args = nil
				d.Backup.BeforeUpgrade = false
				return d, od
			},
			want: `prod@default:
  back up database gpustack-prod-data (e6bf9e067296 -> ) {volume} [the data volume holds v0.x SQLite data and the target is v2, which keeps its data in PostgreSQL: /backups]
  migrate data to PostgreSQL gpustack-prod-data (e6bf9e067296 -> 8ad0f94c92e8) [the data volume holds v0.x SQLite data and the target is v2, which keeps its data in PostgreSQL: SQLite is brought to d19176de3b74 and copied into PostgreSQL, which v2 then upgrades to 8ad0f94c92e8; 0 rows: system_loads 0, workers 0, users 0, api_keys 0, models 0, model_instances 0, model_usages 0]
  replace container gpustack-prod (v2.1.2 -> v2.1.2) [the migration flag must not stay set for later starts: without GPUSTACK_DATA_MIGRATION]
  verify gpustack-prod ( -> 8ad0f94c92e8) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
  WARNING revision c45e397531d1 deletes data
  WARNING revision c45e397531d1 changes the model cache
  WARNING revision 2aed534bd7b2 deletes data
  WARNING v2 drops the Ollama model source, llama-box and venv-based custom backends
  WARNING v2 has no Windows or macOS workers
  WARNING this data directory keeps its embedded worker under v2
  WARNING the volume backup is taken although backup.before_upgrade = false
`,
		},
		{
			name: "jump with the model cache inside the data volume warns about the backup's size",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				old := plantest.Deployment("v0.7.1", "cpu")
				old.Cache = nil
				od := plantest.Running(t, old, "d19176de3b74")
				od.Cache = nil
				d := plantest.V2Deployment("v2.2.3")
				d.Cache = nil
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:v2"}
				return d, od
			},
			want: `prod@default:
  back up database gpustack-prod-data (d19176de3b74 -> ) {volume} [the data volume holds v0.x SQLite data and the target is v2, which keeps its data in PostgreSQL: /backups]
  migrate data to PostgreSQL gpustack-prod-data (d19176de3b74 -> c4d7e8f9a0b1) [the data volume holds v0.x SQLite data and the target is v2, which keeps its data in PostgreSQL: SQLite is brought to d19176de3b74 and copied into PostgreSQL, which v2 then upgrades to c4d7e8f9a0b1; 0 rows: system_loads 0, workers 0, users 0, api_keys 0, model_files 0, models 0, model_instances 0, modelinstancemodelfilelink 0, model_usages 0]
  replace container gpustack-prod (v2.2.3 -> v2.2.3) [the migration flag must not stay set for later starts: without GPUSTACK_DATA_MIGRATION]
  verify gpustack-prod ( -> c4d7e8f9a0b1) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
  WARNING revision 2aed534bd7b2 deletes data
  WARNING v2 drops the Ollama model source, llama-box and venv-based custom backends
  WARNING v2 has no Windows or macOS workers
  WARNING the backup of the whole data volume includes the model cache inside it
`,
		},
		{
			name: "jump to v2.0.0 refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.7.1", "cpu"), "d19176de3b74")
				return plantest.V2Deployment("v2.0.0"), od
			},
			want: "prod@default:\n  REFUSED data-migration-blocked: GPUStack v2.0.0 cannot be the target of the v0.x → v2 data migration\n",
		},
		{
			name: "jump from a dev-only SQLite revision refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.7.1", "cpu"), "d19176de3b74")
				od.Database.Revision = "de42569c03ba"
				return plantest.V2Deployment("v2.2.3"), od
			},
			want: "prod@default:\n  REFUSED data-migration-blocked: the SQLite database is stamped de42569c03ba, a revision only development images wrote\n",
		},
		{
			name: "jump from an unknown SQLite revision refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.7.1", "cpu"), "d19176de3b74")
				od.Database.Revision = "ffffffffffff"
				return plantest.V2Deployment("v2.2.3"), od
			},
			want: "prod@default:\n  REFUSED data-migration-blocked: the SQLite database is stamped ffffffffffff, a revision this catalog does not know\n",
		},
		{
			name: "jump from a database that fails its probe (#1900) refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.6.0", "cpu"), "c45e397531d1")
				od.Database.Tables["model_instances"] = without(od.Database.Tables["model_instances"], "resolved_path")
				return plantest.V2Deployment("v2.2.3"), od
			},
			want: "prod@default:\n  REFUSED data-migration-blocked: the database is stamped c45e397531d1 but lacks model_instances.resolved_path\n",
		},
		{
			name: "already migrated (done-file): a normal v2 start",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.V2Deployment("v2.2.3")
				od := plantest.Running(t, d, "c4d7e8f9a0b1")
				od.Database = plantest.PostgresDatabase(t, "c4d7e8f9a0b1")
				od.Database.MigrationDone = true
				return d, od
			},
			want: "prod@default:\n",
		},
		{
			name: "an earlier jump left the switch on the container and no done-file: refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.V2Deployment("v2.2.3")
				od := plantest.Running(t, d, "c4d7e8f9a0b1")
				od.Container.Env = append(od.Container.Env, "GPUSTACK_DATA_MIGRATION=true")
				od.Database = observe.Database{Status: observe.DBUnsupported, Engine: catalog.EngineEmbeddedPostgres, Reason: "not inspected"}
				return d, od
			},
			want: "prod@default:\n  REFUSED failed-data-migration: an earlier v0.x → v2 data migration on this volume did not finish\n",
		},
		{
			name: "v2 started on v0.x data without the switch (database.db beside PostgreSQL, no done-file): refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.V2Deployment("v2.2.3")
				od := plantest.Running(t, d, "c4d7e8f9a0b1")
				od.Database = plantest.PostgresDatabase(t, "c4d7e8f9a0b1")
				od.Database.SQLiteBeside = true
				return d, od
			},
			want: "prod@default:\n  REFUSED failed-data-migration: an earlier v0.x → v2 data migration on this volume did not finish\n",
		},
		{
			name: "a fresh v2 installation (no done-file, no database.db): nothing to do",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.V2Deployment("v2.2.3")
				od := plantest.Running(t, d, "c4d7e8f9a0b1")
				od.Database = plantest.PostgresDatabase(t, "c4d7e8f9a0b1")
				return d, od
			},
			want: "prod@default:\n",
		},
		{
			name: "an earlier jump left PostgreSQL at the v0.x head without the done-file: refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.7.1", "cpu"), "d19176de3b74")
				od.Database = plantest.PostgresDatabase(t, "d19176de3b74")
				return plantest.V2Deployment("v2.2.3"), od
			},
			want: "prod@default:\n  REFUSED failed-data-migration: an earlier v0.x → v2 data migration on this volume did not finish\n",
		},
		{
			name: "v2 data to v0.x refused: restore the volume backup taken before the jump",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.V2Deployment("v2.2.3"), "c4d7e8f9a0b1")
				od.Database = plantest.PostgresDatabase(t, "c4d7e8f9a0b1")
				od.Database.MigrationDone = true
				return plantest.Deployment("v0.7.1", "cpu"), od
			},
			want: "prod@default:\n  REFUSED era-change: the data volume holds GPUStack v2 data; v0.7.1-cpu is a v0.x release and cannot use it\n",
		},
		{
			name: "v2 upgrade on the embedded PostgreSQL: pg-files backup, migrate, verify",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.V2Deployment("v2.1.2"), "8ad0f94c92e8")
				od.Database = plantest.PostgresDatabase(t, "8ad0f94c92e8")
				d := plantest.V2Deployment("v2.2.3")
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:v223"}
				return d, od
			},
			want: `prod@default:
  back up database gpustack-prod-data (8ad0f94c92e8 -> ) {pg-files} [the database is behind the target release: /backups]
  replace container gpustack-prod (v2.1.2 -> v2.2.3) [the version changes]
  migrate database c4d7e8f9a0b1 (8ad0f94c92e8 -> c4d7e8f9a0b1) [the database is behind the target release]
  verify gpustack-prod ( -> c4d7e8f9a0b1) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
`,
		},
		{
			name: "v2 upgrade with backup method pg-dump",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.V2Deployment("v2.2.2"), "c4d7e8f9a0b1")
				od.Database = plantest.PostgresDatabase(t, "c4d7e8f9a0b1")
				d := plantest.V2Deployment("v2.2.3")
				d.Backup.Method = config.BackupPGDump
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:v223"}
				return d, od
			},
			want: `prod@default:
  back up database gpustack-prod-data (c4d7e8f9a0b1 -> ) {pg-dump} [the image changes, so the database must be saved first: /backups]
  replace container gpustack-prod (v2.2.2 -> v2.2.3) [the version changes]
  verify gpustack-prod ( -> c4d7e8f9a0b1) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
`,
		},
		{
			name: "v2 database ahead of the target refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.V2Deployment("v2.2.3"), "c4d7e8f9a0b1")
				od.Database = plantest.PostgresDatabase(t, "c4d7e8f9a0b1")
				return plantest.V2Deployment("v2.1.2"), od
			},
			want: "prod@default:\n  REFUSED database-ahead: the database is at revision c4d7e8f9a0b1, newer than v2.1.2 (head 8ad0f94c92e8)\n",
		},
		{
			name: "v2 database stamped by a development image refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.V2Deployment("v2.1.0"), "53667f33f000")
				od.Database = plantest.PostgresDatabase(t, "53667f33f000")
				od.Database.Revision = "bc310a40a89b"
				return plantest.V2Deployment("v2.2.3"), od
			},
			want: "prod@default:\n  REFUSED dev-revision: the database is stamped with bc310a40a89b, a revision that only ever existed on development images\n",
		},
		{
			name: "v2 database created by v2.2.0rc1-rc3 lacks model_usage_details.completed (#5774) refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.V2Deployment("v2.2.1"), "b2c3d4e5f6a7")
				od.Database = plantest.PostgresDatabase(t, "b2c3d4e5f6a7")
				for _, table := range []string{"model_usage_details", "model_usage_details_archive"} {
					od.Database.Tables[table] = without(od.Database.Tables[table], "completed")
				}
				return plantest.V2Deployment("v2.2.3"), od
			},
			want: "prod@default:\n  REFUSED probe-mismatch: the database is stamped b2c3d4e5f6a7 but lacks model_usage_details.completed, model_usage_details_archive.completed\n",
		},
		{
			name: "external PostgreSQL: dumped before the upgrade, migration without a revision gate",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				old := external(plantest.V2Deployment("v2.1.2"), config.SchemePostgreSQL)
				od := plantest.Running(t, old, "8ad0f94c92e8")
				od.Database = observe.Database{Status: observe.DBAbsent}
				d := external(plantest.V2Deployment("v2.2.3"), config.SchemePostgreSQL)
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:v223"}
				return d, od
			},
			want: "prod@default:\n  back up database external postgresql database (8ad0f94c92e8 -> ) {external-dump} [the image changes, so the database must be saved first: /backups]\n  replace container gpustack-prod (v2.1.2 -> v2.2.3) [the version changes]\n  migrate database c4d7e8f9a0b1 (8ad0f94c92e8 -> c4d7e8f9a0b1) [the database is external: GPUStack migrates it at start, and gpustack-deploy cannot read its revision]\n  verify gpustack-prod [a new container must prove it works]\n  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]\n  WARNING no embedded database is started: GPUStack uses the external postgresql database named by database_url\n",
		},
		{
			name: "external MySQL, backup acknowledged: no backup, loud warnings",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				old := external(plantest.V2Deployment("v2.1.2"), config.SchemeMySQL)
				od := plantest.Running(t, old, "8ad0f94c92e8")
				od.Database = observe.Database{Status: observe.DBAbsent}
				d := external(plantest.V2Deployment("v2.2.3"), config.SchemeMySQL)
				d.Backup.ExternalAcknowledged = true
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:v223"}
				return d, od
			},
			want: `prod@default:
  replace container gpustack-prod (v2.1.2 -> v2.2.3) [the version changes]
  migrate database c4d7e8f9a0b1 (8ad0f94c92e8 -> c4d7e8f9a0b1) [the database is external: GPUStack migrates it at start, and gpustack-deploy cannot read its revision]
  verify gpustack-prod [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
  WARNING no embedded database is started: GPUStack uses the external mysql database named by database_url
  WARNING MySQL can half-apply a migration
  WARNING NO BACKUP: the external mysql database is not backed up before the image changes
`,
		},
		{
			name: "external database while the data volume holds SQLite data refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.7.1", "cpu"), "d19176de3b74")
				return external(plantest.V2Deployment("v2.2.3"), config.SchemePostgreSQL), od
			},
			want: "prod@default:\n  REFUSED data-migration-blocked: the data volume holds a SQLite database, but database_url names an external one\n",
		},
		{
			name: "external database migrated further than the target refused",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, external(plantest.V2Deployment("v2.2.3"), config.SchemePostgreSQL), "c4d7e8f9a0b1")
				od.Database = observe.Database{Status: observe.DBAbsent}
				return external(plantest.V2Deployment("v2.1.2"), config.SchemePostgreSQL), od
			},
			want: "prod@default:\n  REFUSED database-ahead: the external database was migrated to c4d7e8f9a0b1 by the running release, newer than v2.1.2 (head 8ad0f94c92e8)\n",
		},
		{
			name: "v2 fresh install",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				d := plantest.Deployment("v2.2.3", "")
				d.Cache.Path = "/var/lib/gpustack/cache"
				od := plantest.Absent(d)
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:v2"}
				return d, od
			},
			want: `prod@default:
  create volume gpustack-prod-data [the volume does not exist]
  create volume gpustack-prod-cache [the volume does not exist]
  create container gpustack-prod ( -> v2.2.3) [the deployment has no container yet]
  migrate database c4d7e8f9a0b1 ( -> c4d7e8f9a0b1) [GPUStack creates the database at its first start]
  verify gpustack-prod ( -> c4d7e8f9a0b1) [a new container must prove it works]
`,
		},
		{
			name: "unreadable database blocks a version change",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.4.1", "cpu"), "004c73a5c09e")
				od.Database = observe.Database{Status: observe.DBUnknown, Reason: "copy failed"}
				return plantest.Deployment("v0.5.1", "cpu"), od
			},
			want: "prod@default:\n  REFUSED unreadable-database: the database in the data volume could not be read\n",
		},
		{
			name: "interrupted replace: container missing, previous kept aside",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				old := plantest.Deployment("v0.4.1", "cpu")
				od := plantest.Running(t, old, "004c73a5c09e")
				od.Previous = od.Container
				od.Previous.Name, od.Previous.State = "gpustack-prod-gsd-previous", "exited"
				od.Container = nil
				d := plantest.Deployment("v0.5.1", "cpu")
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:new"}
				return d, od
			},
			want: `prod@default:
  back up database gpustack-prod-data (004c73a5c09e -> ) {sqlite} [the database is behind the target release: /backups]
  create container gpustack-prod ( -> v0.5.1-cpu) [the container was removed]
  migrate database e6bf9e067296 (004c73a5c09e -> e6bf9e067296) [the database is behind the target release]
  verify gpustack-prod ( -> e6bf9e067296) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [an interrupted apply left it behind]
`,
		},
		{
			name: "interrupted before verification: the unverified container is verified, not replaced",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				old := plantest.Running(t, plantest.Deployment("v0.5.1", "cpu"), "e6bf9e067296")
				d := plantest.Deployment("v0.6.0", "cpu")
				od := plantest.Running(t, d, "c45e397531d1")
				od.Container.Restart, od.Container.Health = "no", "unreachable"
				od.Previous = old.Container
				od.Previous.Name, od.Previous.State = "gpustack-prod-gsd-previous", "exited"
				return d, od
			},
			want: `prod@default:
  start container gpustack-prod [an interrupted apply started it but never verified it: running]
  verify gpustack-prod ( -> c45e397531d1) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [an interrupted apply left it behind]
`,
		},
		{
			name: "backups disabled",
			setup: func(t *testing.T) (config.Deployment, *observe.Deployment) {
				od := plantest.Running(t, plantest.Deployment("v0.4.1", "cpu"), "004c73a5c09e")
				d := plantest.Deployment("v0.5.1", "cpu")
				d.Backup.BeforeUpgrade = false
				od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:new"}
				return d, od
			},
			want: `prod@default:
  replace container gpustack-prod (v0.4.1-cpu -> v0.5.1-cpu) [the version changes]
  migrate database e6bf9e067296 (004c73a5c09e -> e6bf9e067296) [the database is behind the target release]
  verify gpustack-prod ( -> e6bf9e067296) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, od := tt.setup(t)
			got := planOne(t, d, od).String()
			if got != tt.want {
				t.Errorf("plan mismatch\n--- got\n%s--- want\n%s", got, tt.want)
			}
		})
	}
}

// external gives d an external database of the scheme.
func external(d config.Deployment, scheme string) config.Deployment {
	d.DatabaseURL = config.Value{S: scheme + "://gpustack:pw@db.example/gpustack", Sensitive: true}
	d.DatabaseScheme = scheme
	d.Backup.Method = ""
	d.Backup.ToolImage = "postgres:17"
	return d
}

func without(cols []string, drop ...string) []string {
	var out []string
	for _, c := range cols {
		keep := true
		for _, d := range drop {
			if c == d {
				keep = false
			}
		}
		if keep {
			out = append(out, c)
		}
	}
	return out
}

func TestRefusalsCarryRemedies(t *testing.T) {
	od := plantest.Running(t, plantest.Deployment("v0.6.0", "cpu"), "c45e397531d1")
	p := planOne(t, plantest.Deployment("v0.5.1", "cpu"), od)
	r := p.Deployments[0].Refusals
	if len(r) != 1 {
		t.Fatalf("want one refusal, got %v", r)
	}
	if !strings.Contains(r[0].Remedy, `version = "v0.6.0"`) || !strings.Contains(r[0].Remedy, "gpustack-deploy backups") {
		t.Errorf("remedy should name the release that knows the database and the backups command: %q", r[0].Remedy)
	}
	if len(p.Deployments[0].Actions) != 0 {
		t.Errorf("a refused deployment must have no actions, got %v", p.Deployments[0].Actions)
	}
}

func TestDevTagRemedyPinsTheDatabaseRelease(t *testing.T) {
	od := plantest.Running(t, plantest.Deployment("v0.5.1", "cpu"), "e6bf9e067296")
	p := planOne(t, plantest.Deployment("main", "cpu"), od)
	if got := p.Deployments[0].Refusals[0].Remedy; !strings.Contains(got, `version = "v0.5.1"`) {
		t.Errorf("remedy %q should pin v0.5.1, the release whose head the database is at", got)
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	d := plantest.Deployment("v0.6.0", "cpu")
	od := plantest.Running(t, plantest.Deployment("v0.4.1", "cpu"), "004c73a5c09e")
	first := planOne(t, d, od).String()
	for i := 0; i < 20; i++ {
		if got := planOne(t, d, od).String(); got != first {
			t.Fatalf("run %d differs:\n%s\nvs\n%s", i, got, first)
		}
	}
}

func TestMigrationSteps(t *testing.T) {
	od := plantest.Running(t, plantest.Deployment("v0.4.1", "cpu"), "004c73a5c09e")
	p := planOne(t, plantest.Deployment("v0.7.1", "cpu"), od)
	a, ok := p.Deployments[0].Action(plan.ActionMigrate)
	if !ok {
		t.Fatal("no migrate action")
	}
	var ids []string
	for _, s := range a.Steps {
		ids = append(ids, s.Revision)
	}
	want := "e6bf9e067296 c45e397531d1 cbbc03c88985 d19176de3b74"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("steps %s, want %s", got, want)
	}
}

// goldenCases are rendered by the render package's tests from the same
// inputs; this test keeps the planner's JSON stable for saved plans.
func TestPlanJSONGolden(t *testing.T) {
	od := plantest.Running(t, plantest.Deployment("v0.4.1", "cpu"), "004c73a5c09e")
	p := planOne(t, plantest.Deployment("v0.6.0", "cpu"), od)
	got, err := marshalIndent(p)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "upgrade.json.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./planner -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("JSON differs from %s; run with -update and review the diff\n%s", golden, got)
	}
}

func marshalIndent(p *plan.Plan) ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	return append(b, '\n'), err
}

func TestReplaceData(t *testing.T) {
	d := plantest.Deployment("v0.6.0", "cpu")
	od := plantest.Running(t, d, "c45e397531d1")
	od.DataUsage = &observe.Usage{Files: 5, Bytes: 81920}
	od.CacheUsage = &observe.Usage{Files: 3, Bytes: 3 << 30}
	plans := map[string]*observe.Deployment{d.Name: od}
	p, err := Plan(&config.Desired{Deployments: []config.Deployment{d}}, &observe.Observed{Deployments: plans}, catalog.Default(), ReplaceData(d.Name))
	if err != nil {
		t.Fatal(err)
	}
	want := `prod@default:
  back up database gpustack-prod-data (c45e397531d1 -> ) {sqlite} [a fresh data volume was asked for (--replace): /backups]
  remove container gpustack-prod [a fresh data volume was asked for (--replace)]
  delete volume gpustack-prod-data [a fresh data volume was asked for (--replace): 5 files, 80.0 KiB]
  create volume gpustack-prod-data [a fresh data volume was asked for (--replace)]
  create container gpustack-prod ( -> v0.6.0-cpu) [a fresh data volume was asked for (--replace)]
  migrate database c45e397531d1 ( -> c45e397531d1) [GPUStack creates the database at its first start]
  verify gpustack-prod ( -> c45e397531d1) [a new container must prove it works]
  WARNING everything in volume gpustack-prod-data is deleted (5 files, 80.0 KiB); the model cache gpustack-prod-cache is kept: 3 files, 3.0 GiB
`
	if got := p.String(); got != want {
		t.Errorf("plan mismatch\n--- got\n%s--- want\n%s", got, want)
	}

	// A broken database is what a fresh redeploy is for: it is kept as
	// found instead of refusing.
	od.Database.Tables["model_instances"] = without(od.Database.Tables["model_instances"], "resolved_path")
	p, _ = Plan(&config.Desired{Deployments: []config.Deployment{d}}, &observe.Observed{Deployments: plans}, catalog.Default(), ReplaceData(d.Name))
	if a := p.Deployments[0].Actions[0]; a.Kind != plan.ActionSafetyCopy || p.Refused() {
		t.Errorf("a damaged database must be kept as found, got %v refused=%v", a.Kind, p.Refused())
	}

	// Without a separate cache volume the models would go with the data.
	noCache := d
	noCache.Cache = nil
	p, _ = Plan(&config.Desired{Deployments: []config.Deployment{noCache}}, &observe.Observed{Deployments: plans}, catalog.Default(), ReplaceData(d.Name))
	if !p.Refused() || p.Deployments[0].Refusals[0].Code != plan.RefuseCacheNotSeparate {
		t.Errorf("want cache-not-separate, got %v", p.Deployments[0].Refusals)
	}

	// Nothing is deleted that could not be measured first.
	od.DataUsage, od.UsageError = nil, "no shell"
	p, _ = Plan(&config.Desired{Deployments: []config.Deployment{d}}, &observe.Observed{Deployments: plans}, catalog.Default(), ReplaceData(d.Name))
	if !p.Refused() || p.Deployments[0].Refusals[0].Code != plan.RefuseCannotMeasure {
		t.Errorf("want cannot-measure, got %v", p.Deployments[0].Refusals)
	}
}

func TestCacheSplit(t *testing.T) {
	d := plantest.Deployment("v0.5.1", "cpu")
	inline := d
	inline.Cache = nil
	od := plantest.Running(t, inline, "e6bf9e067296")
	od.Cache = nil
	od.InlineCache = &observe.Usage{Files: 2, Bytes: 2 << 30}
	want := `prod@default:
  create volume gpustack-prod-cache [the volume does not exist]
  copy model cache gpustack-prod-cache (gpustack-prod-data/cache -> ) [the model cache lives inside the data volume; the file gives it a volume of its own: 2 files, 2.0 GiB]
  replace container gpustack-prod (v0.5.1-cpu -> v0.5.1-cpu) [the configuration changed: args, volumes]
  verify gpustack-prod ( -> e6bf9e067296) [a new container must prove it works]
  remove previous container gpustack-prod-gsd-previous [it was kept only to roll back to until the new container is verified]
  remove old cache copy gpustack-prod-data [the copy in the cache volume is verified and in use: 2 files, 2.0 GiB]
  WARNING the model cache moves out of volume gpustack-prod-data (2 files, 2.0 GiB)
`
	if got := planOne(t, d, od).String(); got != want {
		t.Errorf("plan mismatch\n--- got\n%s--- want\n%s", got, want)
	}
	od.InlineCache, od.UsageError = nil, "no shell in the image"
	if p := planOne(t, d, od); !p.Refused() || p.Deployments[0].Refusals[0].Code != plan.RefuseCannotMeasure {
		t.Errorf("an unmeasurable data volume must refuse, got %s", p)
	}
}

func TestPlanDestroy(t *testing.T) {
	d := plantest.Deployment("v0.5.1", "cpu")
	od := plantest.Running(t, d, "e6bf9e067296")
	od.DataUsage = &observe.Usage{Files: 4, Bytes: 4096}
	got := (&plan.Plan{Deployments: []plan.Deployment{PlanDestroy(d, od, nil)}}).String()
	if want := "prod@default:\n  remove container gpustack-prod [destroy was asked for]\n"; got != want {
		t.Errorf("destroy keeps volumes by default:\n%s", got)
	}
	got = (&plan.Plan{Deployments: []plan.Deployment{PlanDestroy(d, od, []string{"gpustack-prod-data"})}}).String()
	if !strings.Contains(got, "delete volume gpustack-prod-data [its deletion was asked for by name: 4 files, 4.0 KiB]") {
		t.Errorf("a named volume is deleted:\n%s", got)
	}
	pd := PlanDestroy(d, od, []string{"someone-elses-volume"})
	if len(pd.Refusals) != 1 || len(pd.Actions) != 0 {
		t.Errorf("a volume that is not the deployment's must be refused: %+v", pd)
	}
	od.Container.Managed = false
	if pd := PlanDestroy(d, od, nil); len(pd.Refusals) != 1 {
		t.Errorf("a container that is not ours must be refused: %+v", pd)
	}
}
