package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

func runValidate(_ context.Context, s stdio, args []string) int {
	var c common
	fs := newFlagSet("validate", "Check the configuration files without contacting Docker.", "gpustack-deploy validate -f gpustack.hcl", s)
	c.register(fs)
	if code, done := parse(fs, args, s); done {
		return code
	}
	l, ok := c.load(s)
	if !ok {
		return exitError
	}
	fmt.Fprintf(s.out, "The configuration is valid: %d deployment(s).\n", len(l.desired.Deployments))
	return exitOK
}

// statusRow is one deployment in `status`.
type statusRow struct {
	Name string `json:"name"`
	// Role is "server" or "worker"; Server names a worker's server.
	Role      string    `json:"role"`
	Server    string    `json:"server,omitempty"`
	Host      string    `json:"host"`
	Container string    `json:"container"`
	State     string    `json:"state"`
	Version   string    `json:"version,omitempty"`
	Health    string    `json:"health,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Uptime is how long the container has run, when it runs.
	Uptime   string `json:"uptime,omitempty"`
	Revision string `json:"revision,omitempty"`
	Database string `json:"database"`
	// LastBackup is the newest verified backup (safety copies are not).
	LastBackup        string    `json:"last_backup,omitempty"`
	LastBackupCreated time.Time `json:"last_backup_created,omitzero"`
}

// newStatusRow describes one deployment as observed (o may be nil), with
// its backups newest first.
func newStatusRow(d config.Deployment, o *observe.Deployment, backups []backup.Manifest, now time.Time) statusRow {
	row := statusRow{Name: d.Name, Role: config.RoleServer, Host: d.Host, Container: d.ContainerName, State: "absent", Database: "unknown"}
	if d.IsWorker() {
		row.Role, row.Server = config.RoleWorker, d.Server
	}
	if o != nil {
		row.Database, row.Revision = o.Database.Status.String(), o.Database.Revision
		if ct := o.Container; ct != nil {
			row.State, row.Version, row.Health = ct.State, ct.Labels[spec.LabelVersion], ct.Health
			if ct.Running() && !ct.StartedAt.IsZero() {
				row.StartedAt = ct.StartedAt
				row.Uptime = now.Sub(ct.StartedAt).Round(time.Second).String()
			}
		}
	}
	for _, m := range backups {
		if m.Verified {
			row.LastBackup, row.LastBackupCreated = m.ID, m.Created
			break
		}
	}
	return row
}

// writeStatus prints the rows as a table.
func writeStatus(w io.Writer, rows []statusRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEPLOYMENT\tHOST\tCONTAINER\tSTATE\tVERSION\tHEALTH\tUPTIME\tREVISION\tLAST VERIFIED BACKUP")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Host, r.Container, r.State, dash(r.Version), dash(r.Health), dash(r.Uptime), dash(r.Revision), dash(r.LastBackup))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

func runStatus(ctx context.Context, s stdio, args []string) int {
	var (
		c      common
		tf     targetFlag
		asJSON bool
	)
	fs := newFlagSet("status", "Show each deployment's container, version, health, database revision and last verified backup.",
		"gpustack-deploy status --json", s)
	c.register(fs)
	tf.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if code, done := parse(fs, args, s); done {
		return code
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
	obs, err := c.observe(ctx, engines, l.desired.Deployments)
	if err != nil {
		return errorf(s, "%v", err)
	}
	var rows []statusRow
	now := time.Now()
	for _, d := range l.desired.Deployments {
		// A backup directory that cannot be read leaves the column empty.
		list, _ := listBackups(d.Backup.Dir, d.Name)
		rows = append(rows, newStatusRow(d, obs.Deployments[d.Name], list, now))
	}
	if asJSON {
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return errorf(s, "encode status: %v", err)
		}
		return exitOK
	}
	if err := writeStatus(s.out, rows); err != nil {
		return errorf(s, "%v", err)
	}
	return exitOK
}

func runBackups(_ context.Context, s stdio, args []string) int {
	var (
		c      common
		asJSON bool
	)
	fs := newFlagSet("backups", "List each deployment's verified backups, newest first.", "gpustack-deploy backups -f gpustack.hcl", s)
	c.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if code, done := parse(fs, args, s); done {
		return code
	}
	l, ok := c.load(s)
	if !ok {
		return exitError
	}
	all := map[string][]backup.Manifest{}
	tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "DEPLOYMENT\tID\tCREATED\tVERSION\tREVISION\tMETHOD\tSIZE\tROWS\tVERIFIED\tREASON")
	}
	for _, d := range l.desired.Deployments {
		list, err := listBackups(d.Backup.Dir, d.Name)
		if err != nil {
			return errorf(s, "%v", err)
		}
		all[d.Name] = list
		for _, m := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%t\t%s\n", d.Name, m.ID, m.Created.Local().Format(time.DateTime), m.Version, m.Revision, m.GetMethod(), m.Size(), m.TotalRows(), m.Verified, m.Reason)
		}
	}
	if asJSON {
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			return errorf(s, "encode backups: %v", err)
		}
		return exitOK
	}
	tw.Flush()
	return exitOK
}

func listBackups(dir, deployment string) ([]backup.Manifest, error) {
	if dir == "" {
		return nil, nil // a worker: no database, no backups
	}
	store, err := backup.Open(dir, deployment)
	if err != nil {
		return nil, err
	}
	return store.List()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
