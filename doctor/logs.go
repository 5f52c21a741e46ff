package doctor

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/executor"
)

// logHit is one failure signature found in a log line.
type logHit struct {
	code string
	// table and column name what a schema error is about; revision what
	// "Can't locate revision" names.
	table, column, revision string
	line                    string
}

func (h logHit) key() string { return h.code + "\x00" + h.table + "." + h.column + "\x00" + h.revision }

var (
	versionRe      = regexp.MustCompile(`GPUStack version: (\S+)`)
	noColumnRe     = regexp.MustCompile(`no such column: ([A-Za-z_]\w*)\.([A-Za-z_]\w*)`)
	pgColumnRe     = regexp.MustCompile(`column "(\w+)" of relation "(\w+)" does not exist`)
	pgDotColumnRe  = regexp.MustCompile(`column (\w+)\.(\w+) does not exist`)
	noTableRe      = regexp.MustCompile(`no such table: (\w+)`)
	cantLocateRe   = regexp.MustCompile(`Can't locate revision identified by '([^']+)'`)
	duplicateColRe = regexp.MustCompile(`(?i)duplicate column name:? '?(\w+)'?`)
)

// logVersion returns the version the last "GPUStack version:" line reports
// (v0.7.0+ log it at start) and the line.
func logVersion(lines []string) (string, string) {
	for i := len(lines) - 1; i >= 0; i-- {
		if m := versionRe.FindStringSubmatch(lines[i]); m != nil {
			return m[1], strings.TrimSpace(lines[i])
		}
	}
	return "", ""
}

// lastRun returns the lines of the container's last start: from the last
// "Running database migration." (every release logs it), moved back to the
// version line just before it. Failures of earlier runs that a later run
// got past do not count.
func lastRun(lines []string) []string {
	start := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "Running database migration") {
			start = i
			break
		}
	}
	if start < 0 {
		return lines
	}
	for k := start - 1; k >= 0 && k >= start-5; k-- {
		if _, bad := executor.MatchSignature(lines[k]); bad {
			break
		}
		if strings.Contains(lines[k], "GPUStack version:") {
			start = k
			break
		}
	}
	return lines[start:]
}

// scanLog finds the failure signatures in lines, keeping the last line of each.
func scanLog(lines []string) []logHit {
	var hits []logHit
	index := map[string]int{}
	for _, raw := range lines {
		line := strings.TrimSpace(raw)
		h, ok := matchLine(line)
		if !ok {
			continue
		}
		if i, dup := index[h.key()]; dup {
			hits[i] = h
			continue
		}
		index[h.key()] = len(hits)
		hits = append(hits, h)
	}
	return hits
}

func matchLine(line string) (logHit, bool) {
	h := logHit{line: clip(line, 400)}
	switch {
	case noColumnRe.MatchString(line):
		m := noColumnRe.FindStringSubmatch(line)
		h.code, h.table, h.column = CodeNoSuchColumn, m[1], m[2]
	case pgColumnRe.MatchString(line):
		m := pgColumnRe.FindStringSubmatch(line)
		h.code, h.table, h.column = CodeNoSuchColumn, m[2], m[1]
	case pgDotColumnRe.MatchString(line):
		m := pgDotColumnRe.FindStringSubmatch(line)
		h.code, h.table, h.column = CodeNoSuchColumn, m[1], m[2]
	case noTableRe.MatchString(line):
		h.code, h.table = CodeNoSuchColumn, noTableRe.FindStringSubmatch(line)[1]
	case cantLocateRe.MatchString(line):
		h.code, h.revision = CodeUnknownRevisionLg, cantLocateRe.FindStringSubmatch(line)[1]
	case duplicateColRe.MatchString(line):
		h.code, h.column = CodeDuplicateColumn, duplicateColRe.FindStringSubmatch(line)[1]
	default:
		sig, bad := executor.MatchSignature(line)
		if !bad {
			return h, false
		}
		switch sig {
		case "Failed to migrate":
			h.code = CodeDataMigration
		case "unrecognized arguments":
			h.code = CodeBadArguments
		default:
			h.code = CodeStartFailed
		}
	}
	return h, true
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// checkLog turns a container's failure signatures into findings that
// explain them with what the database shows.
func (d *diagnosis) checkLog(s *subject) {
	specific := false
	for _, h := range s.hits {
		if h.code != CodeStartFailed {
			specific = true
		}
	}
	// A stopped neighbour whose run ended before the deployment's container
	// started is history: the current container got past it.
	stale := !s.primary && d.primary != nil && d.primary.ct.Running() && !s.ct.Running() &&
		s.ct.StartedAt.Before(d.primary.ct.StartedAt)
	failed := false
	for _, h := range s.hits {
		// Rejected arguments stop the start before the database is opened.
		failed = failed || h.code != CodeBadArguments
	}
	if stale {
		for _, h := range s.hits {
			d.add(Finding{Code: h.code, Severity: Info,
				Summary:  fmt.Sprintf("%san earlier start failed, before %s started", s.prefix(), d.primary.name()),
				Detail:   "The deployment's container started after this one stopped; the failure is kept here as history.",
				Evidence: h.line,
			})
		}
		return
	}
	if failed {
		d.logFailure = d.logFailure || s.primary
		if d.failedAt.IsZero() || s.ct.StartedAt.After(d.failedAt) {
			d.failedAt = s.ct.StartedAt
		}
	}
	for _, h := range s.hits {
		switch h.code {
		case CodeNoSuchColumn:
			d.add(d.missingSchema(s, h))
		case CodeUnknownRevisionLg:
			d.add(d.cannotLocate(s, h))
		case CodeDuplicateColumn:
			d.add(Finding{Code: h.code, Severity: Critical,
				Summary: fmt.Sprintf("%sa migration stopped on column %s, which already exists", s.prefix(), h.column),
				Detail: "A migration half-applied: its columns are there but alembic_version was not bumped (#1084; SQLite and MySQL DDL " +
					"is not transactional). Every start retries the same step and fails on the same column.",
				Evidence: h.line,
			})
		case CodeDataMigration:
			d.add(Finding{Code: h.code, Severity: Critical,
				Summary: s.prefix() + "the v0.x → v2 data migration failed",
				Detail: "`gpustack migrate` could not copy the SQLite data into PostgreSQL (#3074, #3596). Once run/state_migration_done " +
					"exists the migration is never retried, and going back to the old image on the same volume loses data (#3575).",
				Evidence: h.line,
			})
		case CodeBadArguments:
			d.add(Finding{Code: h.code, Severity: Error,
				Summary:  s.prefix() + "gpustack start rejected its arguments",
				Detail:   "The arguments name a flag this version does not know; flags change between releases (e.g. --enable-worker is v2.0.1+).",
				Evidence: h.line,
			})
		case CodeStartFailed:
			if specific {
				continue
			}
			d.add(Finding{Code: h.code, Severity: Error,
				Summary: s.prefix() + "GPUStack logged a failed start",
				Detail: "The start (usually the database migration) failed. Before v2.1.1 the process logs this and still exits 0 " +
					", so only the log or a /healthz timeout tells.",
				Evidence: h.line,
			})
		}
	}
}

// missingSchema explains "no such column T.C" with the database's stamp.
func (d *diagnosis) missingSchema(s *subject, h logHit) Finding {
	what := "column " + h.table + "." + h.column
	if h.column == "" {
		what = "table " + h.table
	}
	f := Finding{Code: CodeNoSuchColumn, Severity: Critical, Evidence: h.line,
		Summary: fmt.Sprintf("%sGPUStack stopped: the database has no %s", s.prefix(), what)}
	adder, found := d.firstRevisionWith(h.table, h.column)
	switch {
	case d.db == nil:
		f.Detail = fmt.Sprintf("The image expects %s; the database could not be inspected to tell why.", what)
	case d.stamp == nil:
		f.Detail = fmt.Sprintf("The image expects %s. The database is stamped %q, a revision no release knows, so its schema is "+
			"whatever the image that stamped it left behind (#1572).", what, d.db.Revision)
	case d.stamp.Probe().Has(h.table, h.column):
		f.Detail = fmt.Sprintf("The database is stamped %s, whose migration adds %s, yet it is missing: the revision was stamped by a build "+
			"whose migration was incomplete%s (#1900, #1572), or the migration half-applied. No release re-runs a stamped revision, "+
			"so restarting or upgrading does not repair it.", d.stamp.ID, what, editedNote(*d.stamp))
	case found && adder.Index() > d.stamp.Index() && s.dev:
		f.Detail = fmt.Sprintf("%s comes with revision %s (first in %s) but the database is at %s: this development image's code "+
			"expects a schema its migrations did not give it (#582).", what, adder.ID, adder.FirstTag, d.stamp.ID)
	case found && adder.Index() > d.stamp.Index():
		f.Detail = fmt.Sprintf("%s comes with revision %s (first in %s) but the database is still at %s: the image expects a newer "+
			"schema and its migration did not run to the end.", what, adder.ID, adder.FirstTag, d.stamp.ID)
	case found:
		f.Detail = fmt.Sprintf("%s existed up to a revision before %s, which the database is stamped with: an older image runs on a "+
			"newer database. GPUStack has no downgrade (#261); starting an older image does not undo a migration.", what, d.stamp.ID)
	default:
		f.Detail = fmt.Sprintf("No released revision has %s: a development image's code expects schema that no migration gives it (#582, #2069).", what)
	}
	return f
}

func editedNote(r catalog.Revision) string {
	if len(r.EditedInPlace) == 0 {
		return ""
	}
	return fmt.Sprintf(" (the file of %s was edited in place at %s: the same stamp means different schemas)", r.ID, strings.Join(r.EditedInPlace, ", "))
}

// firstRevisionWith returns the first chain revision whose probe has the
// column (or the table, when column is empty).
func (d *diagnosis) firstRevisionWith(table, column string) (catalog.Revision, bool) {
	chain, err := d.cat.Crossed("", d.cat.Head().ID)
	if err != nil {
		return catalog.Revision{}, false
	}
	for _, r := range chain {
		if r.Probe().Has(table, column) {
			return r, true
		}
	}
	return catalog.Revision{}, false
}

// cannotLocate explains "Can't locate revision identified by 'r'".
func (d *diagnosis) cannotLocate(s *subject, h logHit) Finding {
	f := Finding{Code: CodeUnknownRevisionLg, Severity: Critical, Evidence: h.line,
		Summary: fmt.Sprintf("%sthe image does not know revision %s, which the database is stamped with", s.prefix(), h.revision)}
	if rev, ok := d.cat.Revision(h.revision); ok {
		d.newerStampLogged = d.newerStampLogged || s.primary
		f.Detail = fmt.Sprintf("Revision %s first shipped in %s, so a newer release than this image wrote the database: this is a downgrade. "+
			"GPUStack has no downgrade (#261); the data is intact, run a release that knows it.", rev.ID, rev.FirstTag)
		if rel := d.releaseFor(rev); rel != "" {
			f.Detail += " That is " + rel + "."
		}
		return f
	}
	if dev, ok := d.cat.DevRevision(h.revision); ok {
		f.Detail = fmt.Sprintf("%s only ever existed on development images: %s. No release can start on this database.", h.revision, dev.Note)
		return f
	}
	f.Detail = fmt.Sprintf("No release this catalog knows has %s: either a release newer than this gpustack-deploy wrote it "+
		"(add it with a catalog { file = \"…\" } block), or a development image did.", h.revision)
	return f
}
