package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/planner"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// benchDeployment is the desired deployment of planner_test.go's cases,
// numbered so that n of them do not conflict.
func benchDeployment(i int, version string) config.Deployment {
	name := fmt.Sprintf("prod%03d", i)
	return config.Deployment{
		Name: name, Host: config.DefaultHost, Version: version, Variant: "cpu",
		Image: "gpustack/gpustack", ContainerName: "gpustack-" + name,
		Port: 8000 + i, ContainerPort: 80, ListenAddress: "127.0.0.1",
		Args:    []config.Value{{S: "--disable-worker"}},
		Env:     map[string]config.Value{"GPUSTACK_DEBUG": {S: "false"}},
		Data:    config.Volume{Name: "gpustack-" + name + "-data", Path: spec.DataDir},
		Cache:   &config.Volume{Name: "gpustack-" + name + "-cache", Path: "/var/lib/gpustack-cache"},
		Policy:  config.Policy{Pull: config.PullMissing},
		Backup:  config.BackupPolicy{Dir: "/backups", BeforeUpgrade: true, Keep: 5},
		Health:  config.Health{Timeout: 10 * time.Minute, Address: "127.0.0.1"},
		Restart: "unless-stopped",
	}
}

// benchRunning is what observe reports for a container gpustack-deploy
// created from d, with a database at rev that passes rev's probe.
func benchRunning(b *testing.B, d config.Deployment, rev string) *observe.Deployment {
	b.Helper()
	cat := catalog.Default()
	rel, ok := cat.Release(d.Version)
	if !ok {
		b.Fatalf("release %s not in catalog", d.Version)
	}
	s := spec.For(d, rel.Head)
	ct := &observe.Container{
		ID: "c-" + d.Name, Name: d.ContainerName, Image: d.ImageRef(), ImageID: "sha256:old", State: "running",
		Labels: s.Labels, Managed: true, Args: s.ArgStrings(), Env: s.EnvStrings(), Restart: s.Restart, Health: "ok",
		Ports: []observe.Port{{HostIP: "127.0.0.1", HostPort: d.Port, ContainerPort: 80}},
	}
	for _, m := range s.Mounts {
		ct.Mounts = append(ct.Mounts, observe.Mount{Source: m.Source(), Destination: m.Target})
	}
	r, ok := cat.Revision(rev)
	if !ok {
		b.Fatalf("revision %s not in catalog", rev)
	}
	tables := map[string][]string{"alembic_version": {"version_num"}}
	for name, cols := range r.Probe().Tables {
		tables[name] = append([]string(nil), cols...)
	}
	return &observe.Deployment{
		Name: d.Name, Host: d.Host, Container: ct,
		Image:    &observe.Image{Ref: d.ImageRef(), ID: "sha256:" + d.ImageTag()},
		Data:     &observe.Volume{Source: d.Data.Name, Managed: true},
		Cache:    &observe.Volume{Source: d.Cache.Name, Managed: true},
		Database: observe.Database{Status: observe.DBRead, Engine: catalog.EngineSQLite, Revision: rev, Tables: tables},
	}
}

// BenchmarkPlanner times planner.Plan alone on literal values: n
// deployments that are up to date (no-op), or at v0.4.1 with v0.5.1
// desired and its image present (upgrade).
func BenchmarkPlanner(b *testing.B) {
	cat := catalog.Default()
	from, _ := cat.Release("v0.4.1")
	to, _ := cat.Release("v0.5.1")
	for _, kind := range []string{"noop", "upgrade"} {
		for _, n := range []int{1, 200} {
			b.Run(fmt.Sprintf("%s/%d", kind, n), func(b *testing.B) {
				desired := &config.Desired{}
				observed := &observe.Observed{Deployments: map[string]*observe.Deployment{}}
				for i := range n {
					d := benchDeployment(i, "v0.5.1")
					od := benchRunning(b, d, to.Head)
					if kind == "upgrade" {
						od = benchRunning(b, benchDeployment(i, "v0.4.1"), from.Head)
						od.Image = &observe.Image{Ref: d.ImageRef(), ID: "sha256:new"}
					}
					desired.Deployments = append(desired.Deployments, d)
					observed.Deployments[d.Name] = od
				}
				p, err := planner.Plan(desired, observed, cat)
				if err != nil {
					b.Fatal(err)
				}
				if p.Refused() || p.HasChanges() != (kind == "upgrade") {
					b.Fatalf("%s plan: refused %v, changes %v", kind, p.Refused(), p.HasChanges())
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if _, err := planner.Plan(desired, observed, cat); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkConfigLoad times config.Load (parse, evaluate, validate) of
// examples/basic, and of a generated file with 200 deployments.
func BenchmarkConfigLoad(b *testing.B) {
	example := filepath.Join("..", "examples", "basic")
	if _, err := os.Stat(filepath.Join(example, "gpustack.hcl")); err != nil {
		// No example in this tree: a file like it.
		example = filepath.Join(b.TempDir(), "gpustack.hcl")
		writeHCL(b, example, 1)
	}
	many := filepath.Join(b.TempDir(), "many.hcl")
	writeHCL(b, many, 200)
	for _, c := range []struct{ name, path string }{{"examples-basic", example}, {"generated-200", many}} {
		b.Run(c.name, func(b *testing.B) {
			if _, _, diags := config.Load([]string{c.path}, config.Options{}); diags.HasErrors() {
				b.Fatal(diags.Error())
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, _, diags := config.Load([]string{c.path}, config.Options{}); diags.HasErrors() {
					b.Fatal(diags.Error())
				}
			}
		})
	}
}

// writeHCL writes n deployments shaped like examples/basic.
func writeHCL(b *testing.B, path string, n int) {
	b.Helper()
	var w strings.Builder
	w.WriteString("variable \"version\" { default = \"v0.5.1\" }\n")
	w.WriteString("variable \"admin_password\" {\n  sensitive = true\n  default   = \"bench\"\n}\n")
	for i := range n {
		fmt.Fprintf(&w, `
gpustack "demo%03[1]d" {
  version        = var.version
  variant        = "cpu"
  container_name = "gpustack-demo%03[1]d"
  port           = %[2]d
  listen_address = "127.0.0.1"
  args           = ["--disable-worker"]
  env            = { GPUSTACK_BOOTSTRAP_PASSWORD = var.admin_password }
  volume "data" { name = "gpustack-demo%03[1]d-data" }
  volume "cache" { name = "gpustack-demo%03[1]d-cache" }
  backup {
    dir  = "./backups"
    keep = 5
  }
  health { timeout = "5m" }
}
`, i, 18000+i)
	}
	if err := os.WriteFile(path, []byte(w.String()), 0o644); err != nil {
		b.Fatal(err)
	}
}
