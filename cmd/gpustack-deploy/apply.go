package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/executor"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/render"
)

func runApply(ctx context.Context, s stdio, args []string) int {
	var (
		c           common
		r           replaceFlags
		tf          targetFlag
		autoApprove bool
	)
	fs := newFlagSet("apply", "Change the deployments to match the files: backups first, then the new version, verified, or rolled back.",
		"gpustack-deploy apply -f gpustack.hcl        # plan, confirm, apply\n"+
			"  gpustack-deploy apply upgrade.plan          # apply a saved plan exactly\n"+
			"  gpustack-deploy apply --replace=prod.data   # fresh data volume, model cache kept", s)
	c.register(fs)
	r.register(fs, true)
	tf.register(fs)
	fs.BoolVar(&autoApprove, "auto-approve", false, "apply without asking for confirmation (deleting a volume is still confirmed by name)")
	if code, done := parse(fs, args, s); done {
		return code
	}
	var saved *savedPlan
	if fs.NArg() > 1 {
		return errorf(s, "apply takes at most one saved plan file, got %d arguments", fs.NArg())
	}
	if fs.NArg() == 1 {
		sp, err := loadSavedPlan(fs.Arg(0))
		if err != nil {
			return errorf(s, "%v", err)
		}
		saved = sp
		r.replace = append(r.replace, sp.Replace...)
		if len(tf.names) > 0 {
			return errorf(s, "--target with a saved plan: the plan applies to the deployments it was made for (%s)", targetsText(sp.Targets))
		}
		tf.names = sp.Targets
		if len(c.files) == 0 {
			for _, f := range sp.Files {
				c.files = append(c.files, f.Path)
			}
		}
	}
	l, ok := c.load(s)
	if !ok {
		return exitError
	}
	if err := tf.apply(l); err != nil {
		return errorf(s, "%v", err)
	}
	engines, closeAll, err := c.connect(ctx, l.desired)
	if err != nil {
		return errorf(s, "%v", err)
	}
	defer closeAll()
	replaced, err := r.deployments(l.desired)
	if err != nil {
		return errorf(s, "%v", err)
	}
	p, err := makePlan(ctx, &c, engines, l, replaced)
	if err != nil {
		return errorf(s, "%v", err)
	}
	if saved != nil {
		if why := staleReason(saved, p, l); why != "" {
			return errorf(s, "the saved plan no longer applies: %s.\nNothing was changed. Run `gpustack-deploy plan --out FILE` again and review it.", why)
		}
	} else {
		render.Plan(s.out, p)
	}
	if p.Refused() {
		return exitError
	}
	if !p.HasChanges() {
		// An apply killed in its last step left nothing to do but its lock
		// and journal.
		x := newExecutor(&c, l, engines, s)
		x.Settle(p)
		x.SettleMaintenance(ctx, p, l.desired)
		if saved != nil {
			fmt.Fprintln(s.out, render.Summary(p))
		}
		return exitOK
	}
	if saved == nil && !autoApprove && !confirm(s) {
		fmt.Fprintln(s.err, "Apply cancelled; nothing was changed.")
		return exitError
	}
	x := newExecutor(&c, l, engines, s)
	x.ConfirmDelete = r.confirm(s)
	start := time.Now()
	results, err := x.Apply(ctx, p, l.desired)
	render.Results(s.out, results, time.Since(start))
	if err != nil {
		fmt.Fprintf(s.err, "\nError: %v\n", err)
		return applyExitCode(results)
	}
	return exitOK
}

// staleReason says why a saved plan may not be applied, or "" when the
// files and the hosts are exactly as when it was made.
func staleReason(saved *savedPlan, fresh *plan.Plan, l *loaded) string {
	now := configHashes(l)
	if len(now) != len(saved.Files) {
		return "the configuration files are not the ones the plan was made from"
	}
	for i := range now {
		if now[i] != saved.Files[i] {
			return "configuration file " + now[i].Path + " changed"
		}
	}
	for i, d := range fresh.Deployments {
		if i >= len(saved.Plan.Deployments) || d.Name != saved.Plan.Deployments[i].Name || d.Target != saved.Plan.Deployments[i].Target {
			return "the desired state is not the one the plan was made for (pass the same --var values and environment as to plan)"
		}
	}
	if len(fresh.Deployments) != len(saved.Plan.Deployments) {
		return "the plan was made for other deployments"
	}
	if fresh.Observed != saved.Plan.Observed {
		return "what runs on the Docker hosts changed (containers, images, volumes or the database)"
	}
	a, _ := json.Marshal(fresh.Deployments)
	b, _ := json.Marshal(saved.Plan.Deployments)
	if string(a) != string(b) {
		return "the plan computed now differs from the saved one (a variable or the catalog changed)"
	}
	return ""
}

func confirm(s stdio) bool {
	fmt.Fprint(s.out, "\nDo you want to apply this plan? Only 'yes' will be accepted: ")
	line, ok := s.readLine()
	if !ok {
		fmt.Fprintln(s.out)
		fmt.Fprintln(s.err, "No answer on standard input; pass --auto-approve to apply without asking.")
		return false
	}
	return line == "yes"
}

func applyExitCode(results []executor.Result) int {
	// The workers of a wave end in any order: the worst outcome counts.
	code := exitError
	for _, r := range results {
		switch {
		case r.Unrestored, r.Failure != nil && !r.RolledBack && r.Failure.Kind != executor.FailAction && r.Failure.Kind != executor.FailCleanup:
			return exitBroken
		case r.RolledBack:
			code = exitRolledBack
		}
	}
	return code
}

func targetsText(t []string) string {
	if len(t) == 0 {
		return "all of them"
	}
	return strings.Join(t, ", ")
}
