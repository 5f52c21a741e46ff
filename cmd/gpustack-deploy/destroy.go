package main

import (
	"context"
	"fmt"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/planner"
	"github.com/gpustack-deploy/gpustack-deploy/render"
)

func runDestroy(ctx context.Context, s stdio, args []string) int {
	var (
		c           common
		names       []string
		volumes     []string
		yes         []string
		autoApprove bool
	)
	fs := newFlagSet("destroy", "Remove the containers of the deployments. Volumes and backups stay, unless a volume is named\n"+
		"with --delete-volume, and every volume deletion is confirmed by typing its name (or --yes-delete-volume).",
		"gpustack-deploy destroy -f gpustack.hcl --deployment prod", s)
	c.register(fs)
	fs.StringArrayVar(&names, "deployment", nil, "destroy only this deployment (repeatable)")
	fs.StringArrayVar(&volumes, "delete-volume", nil, "also delete this data or cache volume of the deployment (repeatable)")
	fs.StringArrayVar(&yes, "yes-delete-volume", nil, "confirm deleting this volume without being asked (repeatable; the name must match)")
	fs.BoolVar(&autoApprove, "auto-approve", false, "do not ask before removing containers (volume deletions are still confirmed)")
	if code, done := parse(fs, args, s); done {
		return code
	}
	l, ok := c.load(s)
	if !ok {
		return exitError
	}
	targets, err := selectDeployments(l.desired.Deployments, names)
	if err != nil {
		return errorf(s, "%v", err)
	}
	engines, closeAll, err := c.connect(ctx, l.desired)
	if err != nil {
		return errorf(s, "%v", err)
	}
	defer closeAll()
	var measured []string
	if len(volumes) > 0 {
		for _, d := range targets {
			measured = append(measured, d.Name)
		}
	}
	obs, err := c.observe(ctx, engines, targets, observe.WithUsage(measured...))
	if err != nil {
		return errorf(s, "%v", err)
	}
	p := &plan.Plan{FormatVersion: plan.FormatVersion, Observed: obs.Fingerprint()}
	claimed := map[string]bool{}
	for _, d := range targets {
		mine := volumesOf(d, volumes)
		for _, v := range mine {
			claimed[v] = true
		}
		p.Deployments = append(p.Deployments, planner.PlanDestroy(d, obs.Deployments[d.Name], mine))
	}
	for _, v := range volumes {
		if !claimed[v] {
			return errorf(s, "--delete-volume %s: no selected deployment declares that volume", v)
		}
	}
	render.Plan(s.out, p)
	if p.Refused() {
		return exitError
	}
	if !p.HasChanges() {
		return exitOK
	}
	if !autoApprove && !confirm(s) {
		fmt.Fprintln(s.err, "Destroy cancelled; nothing was changed.")
		return exitError
	}
	x := newExecutor(&c, l, engines, s)
	x.ConfirmDelete = (&replaceFlags{yes: yes}).confirm(s)
	start := time.Now()
	results, err := x.Apply(ctx, p, &config.Desired{Deployments: targets})
	render.Results(s.out, results, time.Since(start))
	if err != nil {
		fmt.Fprintf(s.err, "\nError: %v\n", err)
		return exitError
	}
	fmt.Fprintln(s.out, "\nBackups are kept; list them with `gpustack-deploy backups`.")
	return exitOK
}

// volumesOf returns those of names that are the deployment's data or cache
// volume.
func volumesOf(d config.Deployment, names []string) []string {
	var out []string
	for _, n := range names {
		if n == d.Data.Name || (d.Cache != nil && n == d.Cache.Name) {
			out = append(out, n)
		}
	}
	return out
}
