// Package plantest builds the literal desired and observed values that
// planner, render and benchmark tests compute plans from, so that every
// test describes "a deployment" and "what the engine shows" the same way.
// It is for tests only: nothing in the product imports it.
package plantest

import (
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// Deployment is the desired deployment "prod" at version and variant, with
// a data and a cache volume, published on 127.0.0.1:8080.
func Deployment(version, variant string) config.Deployment {
	return config.Deployment{
		Name: "prod", Host: config.DefaultHost, Version: version, Variant: variant,
		Image: "gpustack/gpustack", ContainerName: "gpustack-prod",
		Port: 8080, ContainerPort: 80, ListenAddress: "127.0.0.1",
		Args:    []config.Value{{S: "--disable-worker"}},
		Env:     map[string]config.Value{"GPUSTACK_DEBUG": {S: "false"}},
		Data:    config.Volume{Name: "gpustack-prod-data", Path: spec.DataDir},
		Cache:   &config.Volume{Name: "gpustack-prod-cache", Path: config.CachePathSQLite},
		Policy:  config.Policy{Pull: config.PullMissing},
		Backup:  config.BackupPolicy{Dir: "/backups", BeforeUpgrade: true, Keep: 5},
		Health:  config.Health{Timeout: 10 * time.Minute, Address: "127.0.0.1"},
		Restart: "unless-stopped",
	}
}

// Running is what observe reports for a healthy container gpustack-deploy
// created from d, with a database at rev that passes rev's probe exactly.
func Running(tb testing.TB, d config.Deployment, rev string) *observe.Deployment {
	tb.Helper()
	head := ""
	if rel, ok := catalog.Default().Release(d.Version); ok {
		head = rel.Head
	}
	s := spec.For(d, head)
	ct := &observe.Container{
		ID: "c1", Name: d.ContainerName, Image: d.ImageRef(), ImageID: "sha256:old", State: "running",
		Labels: s.Labels, Managed: true, Args: s.ArgStrings(), Env: s.EnvStrings(), Restart: s.Restart, Health: "ok",
		Ports: []observe.Port{{HostIP: d.ListenAddress, HostPort: d.Port, ContainerPort: d.ContainerPort}},
	}
	for _, m := range s.Mounts {
		ct.Mounts = append(ct.Mounts, observe.Mount{Source: m.Source(), Destination: m.Target})
	}
	od := &observe.Deployment{
		Name: d.Name, Host: d.Host, Container: ct,
		Image:    &observe.Image{Ref: d.ImageRef(), ID: "sha256:" + d.ImageTag()},
		Data:     &observe.Volume{Source: d.Data.Name, Managed: true},
		Database: Database(tb, rev),
	}
	if d.Cache != nil {
		od.Cache = &observe.Volume{Source: d.Cache.Name, Managed: true}
	}
	return od
}

// Database is a SQLite database stamped rev holding exactly rev's probe.
func Database(tb testing.TB, rev string) observe.Database {
	tb.Helper()
	r, ok := catalog.Default().Revision(rev)
	if !ok {
		tb.Fatalf("revision %s not in catalog", rev)
	}
	tables := map[string][]string{"alembic_version": {"version_num"}}
	for name, cols := range r.Probe().Tables {
		tables[name] = append([]string(nil), cols...)
	}
	return observe.Database{Status: observe.DBRead, Engine: catalog.EngineSQLite, Revision: rev, Tables: tables}
}

// Absent is what observe reports for a deployment with nothing on the host.
func Absent(d config.Deployment) *observe.Deployment {
	return &observe.Deployment{Name: d.Name, Host: d.Host, Database: observe.Database{Status: observe.DBAbsent}}
}

// V2Deployment is Deployment at a v2 version: no variant, the cache at
// v2's own cache directory, backups of the embedded PostgreSQL as files.
func V2Deployment(version string) config.Deployment {
	d := Deployment(version, "")
	d.Cache.Path = config.CachePathPostgres
	d.Backup.Method = config.BackupPGFiles
	return d
}

// PostgresDatabase is v2's embedded PostgreSQL stamped rev holding exactly
// rev's probe, as observe reports it once it reads v2 databases.
func PostgresDatabase(tb testing.TB, rev string) observe.Database {
	tb.Helper()
	db := Database(tb, rev)
	db.Engine = catalog.EngineEmbeddedPostgres
	return db
}

// JumpRows are the rows of the tables the v0.x → v2 migration copies, as
// a small v0.7.1 server holds them.
func JumpRows() map[string]int64 {
	return map[string]int64{
		"system_loads": 1440, "workers": 2, "users": 3, "api_keys": 4, "model_files": 5, "models": 5,
		"model_instances": 6, "modelinstancemodelfilelink": 6, "model_usages": 120, "alembic_version": 1,
	}
}
