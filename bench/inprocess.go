package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/planner"
	"github.com/gpustack-deploy/gpustack-deploy/render"
)

// phases are the in-process durations of the steps of a no-op plan, the
// same calls cmd/gpustack-deploy makes (load, connect, makePlan, render),
// without the process around them.
type phases struct {
	load, dial, observe, plan, render []time.Duration
}

func (b *bench) planPhases(ctx context.Context, d *deployment, runs int) (phases, error) {
	var ph phases
	for i := range runs + 1 { // the first is a warm-up
		t0 := time.Now()
		desired, _, diags := config.Load([]string{d.file()}, config.Options{Environ: os.Environ()})
		if diags.HasErrors() {
			return ph, fmt.Errorf("load: %s", diags.Error())
		}
		t1 := time.Now()
		eng, err := engine.Dial(ctx, config.DefaultHost, "")
		if err != nil {
			return ph, err
		}
		t2 := time.Now()
		obs, err := observe.Observe(ctx, observe.Engines{config.DefaultHost: eng}, desired.Deployments)
		if err != nil {
			eng.Close()
			return ph, err
		}
		t3 := time.Now()
		p, err := planner.Plan(desired, obs, catalog.Default())
		if err != nil {
			eng.Close()
			return ph, err
		}
		t4 := time.Now()
		render.Plan(io.Discard, p)
		t5 := time.Now()
		eng.Close()
		if p.HasChanges() {
			return ph, fmt.Errorf("in-process plan of %s has changes", d.name)
		}
		if i == 0 {
			continue
		}
		ph.load = append(ph.load, t1.Sub(t0))
		ph.dial = append(ph.dial, t2.Sub(t1))
		ph.observe = append(ph.observe, t3.Sub(t2))
		ph.plan = append(ph.plan, t4.Sub(t3))
		ph.render = append(ph.render, t5.Sub(t4))
	}
	return ph, nil
}

// profilePlan CPU-profiles runs in-process no-op plans and returns the
// profile's path and `go tool pprof -top` of it.
func (b *bench) profilePlan(ctx context.Context, d *deployment, runs int) (string, string, error) {
	path := filepath.Join(b.tmp, "plan.cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		return "", "", err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return "", "", err
	}
	_, err = b.planPhases(ctx, d, runs)
	pprof.StopCPUProfile()
	f.Close()
	if err != nil {
		return "", "", err
	}
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", path).CombinedOutput()
	if err != nil {
		return path, "", fmt.Errorf("go tool pprof: %w\n%s", err, top)
	}
	return path, string(top), nil
}
