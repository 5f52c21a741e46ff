// Package render draws plans, apply results and status for people (text)
// and programs (JSON). It computes nothing: every decision is already in
// the values it is given.
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// Plan writes the human form of a plan.
// With deployments on more than one host, each host's deployments follow
// a "Host NAME" heading, in the plan's order (sorted by host).
//
// A plan with workers is drawn by host (each host's section lists what
// runs there), followed by the order apply takes: each server, then its
// workers wave by wave.
func Plan(w io.Writer, p *plan.Plan) {
	hosts := map[string]bool{}
	workers := false
	for _, d := range p.Deployments {
		hosts[d.Host] = true
		workers = workers || d.IsWorker()
	}
	ds := p.Deployments
	if workers {
		ds = append([]plan.Deployment(nil), ds...)
		sort.SliceStable(ds, func(i, j int) bool { return ds[i].Host < ds[j].Host })
	}
	for i, d := range ds {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if len(hosts) > 1 && (i == 0 || ds[i-1].Host != d.Host) {
			fmt.Fprintf(w, "Host %s\n\n", d.Host)
		}
		deployment(w, d)
	}
	if workers {
		order(w, p)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, Summary(p))
}

// order lists the steps of a cluster's apply: a server, then its workers'
// waves.
func order(w io.Writer, p *plan.Plan) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Order of apply:")
	n := 0
	for i := 0; i < len(p.Deployments); {
		d := p.Deployments[i]
		if !d.IsWorker() {
			i++
			if d.HasChanges() {
				n++
				fmt.Fprintf(w, "  %d. gpustack %q on %s\n", n, d.Name, d.Host)
			}
			continue
		}
		j := p.WaveEnd(i)
		if d.Wave > 0 {
			n++
			names := make([]string, 0, j-i)
			maint := false
			for _, x := range p.Deployments[i:j] {
				names = append(names, fmt.Sprintf("%s on %s", x.Name, x.Host))
				maint = maint || x.Maintenance
			}
			line := fmt.Sprintf("wave %d of %s's workers, at once: %s", d.Wave, d.Server, strings.Join(names, ", "))
			if maint {
				line += "; each in maintenance mode until the server lists it on the new version"
			}
			wrapIndent(w, fmt.Sprintf("  %d. ", n), "     ", line)
		}
		i = j
	}
	if n == 0 {
		fmt.Fprintln(w, "  nothing to do")
		return
	}
	wrapIndent(w, "  ", "  ", "A wave starts once every worker of the one before is verified; a worker that fails goes back to its previous container and stops the rollout. Apply again resumes it.")
}

func deployment(w io.Writer, d plan.Deployment) {
	if d.IsWorker() {
		fmt.Fprintf(w, "worker %q on host %s, joins %s", d.Name, d.Host, d.Server)
		if d.Wave > 0 {
			fmt.Fprintf(w, ", wave %d", d.Wave)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "gpustack %q on host %s\n", d.Name, d.Host)
	}
	fmt.Fprintf(w, "  current: %s\n", describeCurrent(d.Current))
	fmt.Fprintf(w, "  target:  %s\n", describeTarget(d))
	if len(d.Actions) > 0 {
		fmt.Fprintln(w)
	}
	for _, a := range d.Actions {
		action(w, a)
	}
	for _, r := range d.Refusals {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  Error: refused (%s): %s\n", r.Code, r.Summary)
		if r.Source != "" {
			fmt.Fprintf(w, "    at %s\n", r.Source)
		}
		wrap(w, "    ", r.Detail)
		wrap(w, "    Instead: ", r.Remedy)
	}
	for _, warn := range d.Warnings {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  Warning: %s\n", warn.Summary)
		if warn.Detail != "" {
			wrap(w, "    ", warn.Detail)
		}
	}
}

func describeCurrent(s plan.State) string {
	var parts []string
	if s.Version != "" {
		parts = append(parts, s.Version)
	}
	if s.Container != "" {
		parts = append(parts, "container "+s.Container)
	} else {
		parts = append(parts, "no container")
	}
	if s.Health != "" {
		parts = append(parts, "health "+s.Health)
	}
	switch {
	case s.Revision != "" && strings.HasPrefix(s.Database, "external "):
		parts = append(parts, fmt.Sprintf("%s at %s", s.Database, s.Revision))
	case s.Revision != "":
		parts = append(parts, fmt.Sprintf("database at %s (%s)", s.Revision, s.Engine))
	case s.Database == "absent":
		parts = append(parts, "no database yet")
	case strings.HasPrefix(s.Database, "external "):
		parts = append(parts, s.Database)
	case s.Database != "":
		parts = append(parts, "database "+s.Database)
	}
	return strings.Join(parts, ", ")
}

func describeTarget(d plan.Deployment) string {
	t := d.Target
	if t.Version == "" {
		return "no container (destroy)"
	}
	s := t.Version
	switch {
	case t.Release != "" && t.Release != d.Tag.Base:
		s += " (release " + t.Release + ")"
	case t.Release == "":
		s += " (" + d.Tag.Class.String() + " tag)"
	}
	if d.IsWorker() {
		return s + ", no database (a worker)"
	}
	if t.Revision != "" {
		s += ", database head " + t.Revision
	} else {
		s += ", database head unknown"
	}
	if t.Database != "" {
		s += ", " + t.Database + " (no embedded database is started)"
	}
	return s
}

func action(w io.Writer, a plan.Action) {
	fmt.Fprintf(w, "  %3s %s", a.Kind.Symbol(), a.Kind)
	switch a.Kind {
	case plan.ActionMigrate:
		switch {
		case a.Reason == plan.ReasonExternalDatabase && a.From == "":
			fmt.Fprintf(w, " of the external database to %s, by GPUStack at start (its revision is not read)\n", a.Subject)
		case a.Reason == plan.ReasonExternalDatabase:
			fmt.Fprintf(w, " of the external database %s -> %s (%d revision%s expected from the running release, not read; run by GPUStack at start)\n",
				a.From, a.To, len(a.Steps), plural(len(a.Steps)))
		case a.From == "":
			fmt.Fprintf(w, ": create the schema at %s, by GPUStack at first start\n", a.Subject)
		default:
			fmt.Fprintf(w, " %s -> %s (%d revision%s, run by GPUStack at start)\n", a.From, a.To, len(a.Steps), plural(len(a.Steps)))
		}
	case plan.ActionBackupDatabase:
		backupLine(w, a)
	case plan.ActionMigrateData:
		fmt.Fprintf(w, " in volume %s: SQLite %s -> PostgreSQL %s (%d revision%s; the rows are copied at %s, run by GPUStack at its first start)\n",
			a.Subject, orNone(a.From), a.To, len(a.Steps), plural(len(a.Steps)), catalog.JumpRevision)
	case plan.ActionSafetyCopy:
		fmt.Fprintf(w, " of volume %s as found (revision %s, not verified) -> %s\n", a.Subject, orNone(a.From), a.Detail)
	case plan.ActionCopyCache:
		fmt.Fprintf(w, " from %s into %s (%s), checked file by file\n", a.From, a.Subject, a.Detail)
	case plan.ActionRemoveOldCache:
		fmt.Fprintf(w, " from volume %s (%s), once the new container is verified\n", a.Subject, a.Detail)
	case plan.ActionDeleteVolume:
		fmt.Fprintf(w, " %s (%s), after you confirm it by name\n", a.Subject, a.Detail)
	case plan.ActionRestoreDatabase:
		fmt.Fprintf(w, " from backup %s into volume %s: revision %s -> %s\n", a.Subject, a.Detail, orNone(a.From), a.To)
	case plan.ActionVerify:
		checks := "/healthz, /version"
		if a.Detail != "" {
			// A worker: its /healthz and its server's listing.
			checks = a.Detail
		}
		if a.To != "" {
			checks += ", revision " + a.To + ", schema probe"
		}
		fmt.Fprintf(w, " %s: %s\n", a.Subject, checks)
	default:
		fmt.Fprintf(w, " %s", a.Subject)
		if a.From != "" || a.To != "" {
			fmt.Fprintf(w, "  %s -> %s", orNone(a.From), a.To)
		}
		fmt.Fprintln(w)
	}
	if a.Reason != plan.ReasonNone && a.Kind != plan.ActionVerify {
		reason := a.Reason.String()
		if a.Detail != "" && !detailShown[a.Kind] {
			reason += ": " + a.Detail
		}
		fmt.Fprintf(w, "        because %s\n", reason)
	}
	if len(a.Rows) > 0 {
		var total int64
		parts := make([]string, len(a.Rows))
		for i, r := range a.Rows {
			total += r.Rows
			parts[i] = fmt.Sprintf("%s %d", r.Table, r.Rows)
		}
		wrapIndent(w, "        copies ", strings.Repeat(" ", 10), fmt.Sprintf("%d rows: %s", total, strings.Join(parts, ", ")))
	}
	copyMark := func() { fmt.Fprintf(w, "        %-24s rows copied from SQLite into PostgreSQL\n", "--") }
	if a.Kind == plan.ActionMigrateData && a.From == catalog.JumpRevision && len(a.Steps) > 0 {
		copyMark()
	}
	for _, s := range a.Steps {
		fmt.Fprintf(w, "        %-24s %s (first in %s)\n", s.Revision, s.Message, s.FirstTag)
		if a.Kind == plan.ActionMigrateData && s.Revision == catalog.JumpRevision {
			copyMark()
		}
	}
}

// backupLine says what a backup saves and how, by method.
func backupLine(w io.Writer, a plan.Action) {
	switch a.Method {
	case plan.MethodVolume:
		fmt.Fprintf(w, ": the whole volume %s, GPUStack stopped, at revision %s -> %s\n", a.Subject, orNone(a.From), a.Detail)
	case plan.MethodPGFiles:
		fmt.Fprintf(w, " in volume %s at revision %s (PostgreSQL files, GPUStack stopped) -> %s\n", a.Subject, a.From, a.Detail)
	case plan.MethodPGDump:
		fmt.Fprintf(w, " in volume %s at revision %s (pg_dump, GPUStack running) -> %s\n", a.Subject, a.From, a.Detail)
	case plan.MethodExternalDump:
		at := "revision not read"
		if a.From != "" {
			at = "expected at revision " + a.From
		}
		fmt.Fprintf(w, ": dump of the %s (%s) from a one-off container -> %s\n", a.Subject, at, a.Detail)
	default:
		fmt.Fprintf(w, " in volume %s at revision %s -> %s\n", a.Subject, a.From, a.Detail)
	}
}

// detailShown are the kinds whose Detail is already part of their line.
var detailShown = map[plan.ActionKind]bool{
	plan.ActionBackupDatabase: true, plan.ActionSafetyCopy: true, plan.ActionRestoreDatabase: true, plan.ActionMigrateData: true,
	plan.ActionCopyCache: true, plan.ActionRemoveOldCache: true, plan.ActionDeleteVolume: true,
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Summary is the plan's last line.
func Summary(p *plan.Plan) string {
	refused := 0
	for _, d := range p.Deployments {
		if len(d.Refusals) > 0 {
			refused++
		}
	}
	if refused > 0 {
		return fmt.Sprintf("Plan refused: %d of %d deployment%s cannot be applied as written. Nothing will be changed.",
			refused, len(p.Deployments), plural(len(p.Deployments)))
	}
	if len(p.Unreachable) > 0 && !p.HasChanges() {
		return fmt.Sprintf("No changes on the hosts that answered; %s could not be reached, and its deployments were not planned.", strings.Join(p.Unreachable, ", "))
	}
	if !p.HasChanges() {
		return "No changes. Every deployment runs as its file says."
	}
	counts := map[plan.ActionKind]int{}
	for _, d := range p.Deployments {
		for _, a := range d.Actions {
			counts[a.Kind]++
		}
	}
	kinds := make([]plan.ActionKind, 0, len(counts))
	for k := range counts {
		if k != plan.ActionVerify {
			kinds = append(kinds, k)
		}
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d %s", counts[k], k)
	}
	return "Plan: " + strings.Join(parts, ", ") + "."
}

// wrap writes text after prefix, folded at 100 columns.
func wrap(w io.Writer, prefix, text string) { wrapIndent(w, prefix, strings.Repeat(" ", 4), text) }

// wrapIndent is wrap with the indent of the continuation lines.
func wrapIndent(w io.Writer, prefix, indent, text string) {
	line := prefix
	for _, word := range strings.Fields(text) {
		if len(line)+len(word)+1 > 100 && strings.TrimSpace(line) != strings.TrimSpace(prefix) {
			fmt.Fprintln(w, line)
			line = indent
		}
		if line != prefix && line != indent {
			line += " "
		}
		line += word
	}
	fmt.Fprintln(w, line)
}

// JSON writes the plan as indented JSON with two convenience fields.
func JSON(w io.Writer, p *plan.Plan) error {
	out := struct {
		*plan.Plan
		Changes bool `json:"changes"`
		Refused bool `json:"refused"`
	}{p, p.HasChanges(), p.Refused()}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	return nil
}
