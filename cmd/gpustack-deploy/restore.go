package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/executor"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/planner"
	"github.com/gpustack-deploy/gpustack-deploy/render"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// selectDeployments returns the deployments named (all when names is empty).
func selectDeployments(all []config.Deployment, names []string) ([]config.Deployment, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []config.Deployment
	for _, n := range names {
		found := false
		for _, d := range all {
			if d.Name == n {
				out, found = append(out, d), true
			}
		}
		if !found {
			return nil, fmt.Errorf("no deployment named %q in the files", n)
		}
	}
	return out, nil
}

// selectServers is selectDeployments for commands about databases: a
// worker keeps none, so it is left out, and naming one is an error.
func selectServers(all []config.Deployment, names []string) ([]config.Deployment, error) {
	ds, err := selectDeployments(all, names)
	if err != nil {
		return nil, err
	}
	var out []config.Deployment
	for _, d := range ds {
		if !d.IsWorker() {
			out = append(out, d)
		} else if len(names) > 0 {
			return nil, fmt.Errorf("%s is a worker: it keeps no database, so it has no backups; its identity is its data volume", d.Name)
		}
	}
	return out, nil
}

func runBackup(ctx context.Context, s stdio, args []string) int {
	var (
		c      common
		names  []string
		online bool
		method string
	)
	fs := newFlagSet("backup", "Take a verified backup of each deployment's database now.\n"+
		"The container is stopped for the copy (usually a second or two) and started again;\n"+
		"--online copies from the running server instead and relies on verification.",
		"gpustack-deploy backup -f gpustack.hcl --deployment prod", s)
	c.register(fs)
	fs.StringArrayVar(&names, "deployment", nil, "back up only this deployment (repeatable)")
	fs.BoolVar(&online, "online", false, "do not stop the container (SQLite only)")
	fs.StringVar(&method, "method", "", "pg-files (v2, GPUStack stopped for the copy), pg-dump (v2, from the running server) or volume; default: sqlite for v0.x, pg-files for v2")
	if code, done := parse(fs, args, s); done {
		return code
	}
	switch plan.BackupMethod(method) {
	case "", plan.MethodSQLite, plan.MethodPGFiles, plan.MethodPGDump, plan.MethodVolume:
	default:
		return errorf(s, "--method %q: want pg-files, pg-dump, volume or sqlite", method)
	}
	l, ok := c.load(s)
	if !ok {
		return exitError
	}
	targets, err := selectServers(l.desired.Deployments, names)
	if err != nil {
		return errorf(s, "%v", err)
	}
	engines, closeAll, err := c.connect(ctx, l.desired)
	if err != nil {
		return errorf(s, "%v", err)
	}
	defer closeAll()
	obs, err := c.observe(ctx, engines, targets)
	if err != nil {
		return errorf(s, "%v", err)
	}
	x := newExecutor(&c, l, engines, s)
	code := exitOK
	for _, d := range targets {
		o := obs.Deployments[d.Name]
		db := o.Database
		if d.ExternalDatabase() {
			// The external database is dumped whether or not plan could
			// read it; the dump itself says which revision it holds.
			db = observe.Database{Status: observe.DBRead}
			if o.External != nil && o.External.Status == observe.DBRead {
				db = *o.External
			}
		}
		if db.Status != observe.DBRead || (db.Revision == "" && !d.ExternalDatabase()) {
			fmt.Fprintf(s.err, "%s: nothing to back up: the database is %s %s\n", d.Name, db.Status, db.Reason)
			code = exitError
			continue
		}
		current := plan.State{Revision: db.Revision}
		if ct := o.Container; ct != nil {
			current.Version, current.Image = ct.Labels[spec.LabelVersion], ct.Image
		}
		m, err := x.BackupNowWith(ctx, d, current, executor.BackupOptions{Online: online, Method: plan.BackupMethod(method)})
		if err != nil {
			fmt.Fprintf(s.err, "Error: %s: %v\n", d.Name, err)
			code = exitError
			continue
		}
		fmt.Fprintf(s.out, "%s: backup %s verified (%s): revision %s, %d rows, %d bytes, in %s\n", d.Name, m.ID, m.GetMethod(), m.Revision, m.TotalRows(), m.Size(), d.Backup.Dir)
	}
	return code
}

func runRestore(ctx context.Context, s stdio, args []string) int {
	var (
		c           common
		names       []string
		autoApprove bool
		unverified  bool
	)
	fs := newFlagSet("restore", "Put a backup back: keep a safety copy of the database as it is now, write the backup\n"+
		"into the data volume, start the version the backup was taken at, and verify it.",
		"gpustack-deploy restore 20261128T061702.000Z-e6bf9e067296 -f gpustack.hcl", s)
	c.register(fs)
	fs.StringArrayVar(&names, "deployment", nil, "the deployment the backup belongs to, when several could hold it")
	fs.BoolVar(&autoApprove, "auto-approve", false, "restore without asking for confirmation")
	fs.BoolVar(&unverified, "unverified", false, "allow restoring a safety copy (a backup that was never verified)")
	if code, done := parse(fs, args, s); done {
		return code
	}
	if fs.NArg() != 1 {
		return errorf(s, "restore takes one backup id (list them with `gpustack-deploy backups`)")
	}
	id := fs.Arg(0)
	l, ok := c.load(s)
	if !ok {
		return exitError
	}
	candidates, err := selectServers(l.desired.Deployments, names)
	if err != nil {
		return errorf(s, "%v", err)
	}
	d, m, err := findBackup(candidates, id)
	if err != nil {
		return errorf(s, "%v", err)
	}
	store, err := backup.Open(d.Backup.Dir, d.Name)
	if err != nil {
		return errorf(s, "%v", err)
	}
	if err := store.Verify(m); err != nil {
		return errorf(s, "%v\nNothing was changed. Choose another backup (gpustack-deploy backups).", err)
	}
	if !m.Verified && !unverified {
		return errorf(s, "backup %s is a safety copy that was never verified (%s); pass --unverified to restore it anyway", m.ID, m.Reason)
	}
	engines, closeAll, err := c.connect(ctx, l.desired)
	if err != nil {
		return errorf(s, "%v", err)
	}
	defer closeAll()
	obs, err := c.observe(ctx, engines, []config.Deployment{d})
	if err != nil {
		return errorf(s, "%v", err)
	}
	pd := planner.PlanRestore(d, obs.Deployments[d.Name], planner.RestoreSource{ID: m.ID, Version: m.Version, Revision: m.Revision}, l.catalog)
	p := &plan.Plan{FormatVersion: plan.FormatVersion, Deployments: []plan.Deployment{pd}, Observed: obs.Fingerprint()}
	fmt.Fprintf(s.out, "Restore backup %s of %q: taken %s at %s, revision %s, %d rows.\n\n",
		m.ID, d.Name, m.Created.Local().Format(time.DateTime), m.Version, m.Revision, m.TotalRows())
	render.Plan(s.out, p)
	if p.Refused() {
		return exitError
	}
	if !autoApprove && !confirm(s) {
		fmt.Fprintln(s.err, "Restore cancelled; nothing was changed.")
		return exitError
	}
	x := newExecutor(&c, l, engines, s)
	start := time.Now()
	results, err := x.Apply(ctx, p, &config.Desired{Deployments: []config.Deployment{planner.AtVersion(d, m.Version)}})
	render.Results(s.out, results, time.Since(start))
	if err != nil {
		fmt.Fprintf(s.err, "\nError: %v\n", err)
		return applyExitCode(results)
	}
	for _, w := range pd.Warnings {
		fmt.Fprintf(s.out, "\nNext: %s\n", w.Detail)
	}
	return exitOK
}

// findBackup finds the deployment whose backup store holds id.
func findBackup(deployments []config.Deployment, id string) (config.Deployment, backup.Manifest, error) {
	var errs []error
	for _, d := range deployments {
		store, err := backup.Open(d.Backup.Dir, d.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if m, err := store.Get(id); err == nil {
			return d, m, nil
		}
	}
	if len(errs) > 0 {
		return config.Deployment{}, backup.Manifest{}, errors.Join(errs...)
	}
	return config.Deployment{}, backup.Manifest{}, fmt.Errorf("no deployment has a backup %q (list them with `gpustack-deploy backups`)", id)
}

func newExecutor(c *common, l *loaded, engines observe.Engines, s stdio) *executor.Executor {
	x := &executor.Executor{Engines: map[string]executor.Engine{}, Catalog: l.catalog, StateDir: c.state(), Out: s.out, TTY: s.tty,
		Adopted: map[string]string{}, Config: l.full}
	for h, e := range engines {
		x.Engines[h] = e
	}
	// A damaged adoption record only means no container counts as adopted.
	adoptions, _ := observe.LoadAdoptions(c.state())
	for name, a := range adoptions {
		x.Adopted[name] = a.ContainerID
	}
	return x
}
