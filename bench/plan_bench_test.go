package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/planner"
	"github.com/gpustack-deploy/gpustack-deploy/planner/plantest"
)

// benchDeployment is plantest's deployment, numbered so that n of them do
// not conflict.
func benchDeployment(i int, version string) config.Deployment {
	d := plantest.Deployment(version, "cpu")
	d.Name = fmt.Sprintf("prod%03d", i)
	d.ContainerName = "gpustack-" + d.Name
	d.Port = 8000 + i
	d.Data.Name = "gpustack-" + d.Name + "-data"
	d.Cache.Name = "gpustack-" + d.Name + "-cache"
	return d
}

// benchRunning is plantest's running deployment, with a container ID of
// its own.
func benchRunning(b *testing.B, d config.Deployment, rev string) *observe.Deployment {
	od := plantest.Running(b, d, rev)
	od.Container.ID = "c-" + d.Name
	return od
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
