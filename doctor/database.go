package doctor

import (
	"fmt"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

// checkDatabase states what the data volume holds and whether a release can
// start on it.
func (d *diagnosis) checkDatabase() {
	db := d.in.Database
	switch db.Status {
	case observe.DBAbsent:
		if d.primary != nil {
			d.add(Finding{Code: CodeNoDatabase, Severity: Info,
				Summary: "the data volume holds no database yet",
				Detail:  "GPUStack creates it on its first successful start; nothing can be lost by starting again.",
			})
		}
		return
	case observe.DBUnknown:
		if strings.HasPrefix(db.Reason, "read the database copy") {
			// The files were copied out; SQLite itself rejects them.
			d.dbDamaged = true
			d.add(Finding{Code: CodeUnreadable, Severity: Critical,
				Summary:  "SQLite cannot read the database file",
				Detail:   "database.db was copied out of the data volume, but SQLite rejects the copy: the file is damaged or not a database.",
				Evidence: db.Reason,
			})
			return
		}
		d.add(Finding{Code: CodeUnreadable, Severity: Warning,
			Summary:  "the database in the data volume could not be read",
			Detail:   "Without reading it, doctor cannot tell whether the data is intact; no way back that changes data is offered.",
			Evidence: db.Reason,
		})
		return
	case observe.DBUnsupported:
		d.add(Finding{Code: CodeNotInspected, Severity: Info,
			Summary:  "the data volume holds GPUStack v2's embedded PostgreSQL, which is not inspected",
			Detail:   "Only the log and the container state are diagnosed for v2 data.",
			Evidence: db.Reason,
		})
	}
	if d.db == nil {
		return
	}
	d.checkSQLite(*d.db)
}

func (d *diagnosis) checkSQLite(db observe.Database) {
	if db.Revision == "" {
		if len(db.Tables) > 1 || (len(db.Tables) == 1 && db.Tables["alembic_version"] == nil) {
			d.dbDamaged = true
			d.add(Finding{Code: CodeUnstamped, Severity: Critical,
				Summary: fmt.Sprintf("the database has %d tables but no Alembic revision", len(db.Tables)),
				Detail:  "GPUStack stamps alembic_version when it creates the database; without it no release knows how to migrate it.",
			})
		}
		return
	}
	if dev, ok := d.cat.DevRevision(db.Revision); ok {
		d.dbDamaged = true
		d.add(Finding{Code: CodeDevRevision, Severity: Critical,
			Summary:  fmt.Sprintf("the database is stamped %s, a revision that only ever existed on development images", db.Revision),
			Detail:   fmt.Sprintf("%s. No release can migrate from it: each fails with \"Can't locate revision identified by '%s'\" (#1572, #3812).", capitalize(dev.Note), db.Revision),
			Evidence: "alembic_version = " + db.Revision,
		})
		return
	}
	rev, ok := d.cat.Revision(db.Revision)
	if !ok {
		d.dbDamaged = true
		d.add(Finding{Code: CodeUnknownRevision, Severity: Error,
			Summary: fmt.Sprintf("the database is stamped %s, a revision this catalog does not know", db.Revision),
			Detail: "A release newer than this gpustack-deploy may have written it (add that release with a catalog { file = \"…\" } block " +
				"or upgrade gpustack-deploy), or a development image did.",
			Evidence: "alembic_version = " + db.Revision,
		})
		return
	}
	d.stamp = &rev
	if missing := rev.Probe().Check(db.Tables); len(missing) > 0 {
		d.dbDamaged = true
		names := make([]string, len(missing))
		for i, m := range missing {
			names[i] = m.String()
		}
		d.add(Finding{Code: CodeProbeMismatch, Severity: Critical,
			Summary: fmt.Sprintf("the database is stamped %s but lacks %s", rev.ID, strings.Join(names, ", ")),
			Detail: fmt.Sprintf("A database stamped %s must have these. A development image stamped the revision before its migration was "+
				"complete%s, or a migration half-applied (#1900, #1572, #5774). Releases never re-run a stamped revision, so GPUStack "+
				"fails with \"no such column\" on every start.", rev.ID, editedNote(rev)),
			Evidence: "alembic_version = " + rev.ID + "; missing " + strings.Join(names, ", "),
		})
		return
	}
	if traces := d.cat.Traces(rev.ID, db.Tables); len(traces) > 0 {
		partial := make([]string, len(traces))
		for i, t := range traces {
			partial[i] = t.String()
		}
		d.dbDamaged = true
		d.add(Finding{Code: CodePartialMigration, Severity: Critical,
			Summary: fmt.Sprintf("the database is stamped %s but already has %s from the next revision", rev.ID, strings.Join(partial, ", ")),
			Detail: "A migration half-applied and was not stamped (SQLite DDL is not transactional, #1084); the next start fails with " +
				"\"duplicate column name\" and the gap is never repaired.",
			Evidence: "alembic_version = " + rev.ID,
		})
		return
	}
	d.dbGood = true
	if s := d.primary; s != nil && s.release != nil && s.era == catalog.EngineSQLite {
		if head, ok := d.cat.Revision(s.release.Head); ok && rev.Index() > head.Index() {
			d.add(Finding{Code: CodeAheadOfImage, Severity: Error,
				Summary: fmt.Sprintf("the database is at %s, newer than %s (head %s)", rev.ID, s.release.Tag, head.ID),
				Detail: fmt.Sprintf("Revision %s first shipped in %s. %s cannot open it: it fails with \"Can't locate revision\" or "+
					"\"no such column\" (#261). This is a downgrade.", rev.ID, rev.FirstTag, s.release.Tag),
				Evidence: "alembic_version = " + rev.ID,
			})
		}
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// releaseFor names the release to run on a database stamped rev: the
// newest final release whose head it is, else the first that contains it.
func (d *diagnosis) releaseFor(rev catalog.Revision) string {
	if rels := d.cat.ReleasesWithHead(rev.ID); len(rels) > 0 {
		return rels[len(rels)-1].Tag
	}
	if rel, ok := d.cat.FirstReleaseWith(rev.ID); ok {
		return rel.Tag
	}
	return ""
}

// checkEra finds an image of one era on the data of the other, the usual
// result of `latest` having moved from v0.7 to v2 (facts §1.2, §5.3).
func (d *diagnosis) checkEra() {
	s := d.primary
	if s == nil || s.era == "" {
		return
	}
	db := d.in.Database
	how := fmt.Sprintf("image %s is GPUStack %s", s.image.Ref, firstNonEmpty(s.version, s.tag.Base))
	if s.tag.Class == catalog.TagFloating {
		how = fmt.Sprintf("the floating tag %q now resolves to %s", s.tag.Raw, firstNonEmpty(s.version, "a "+eraName(s.era)+" image"))
	}
	evidence := firstNonEmpty(s.versionEvidence, s.image.Ref)
	switch {
	case s.era == catalog.EngineEmbeddedPostgres && d.db != nil:
		where := "the data volume holds a SQLite database"
		if db.Status == observe.DBUnsupported {
			where = "database.db in the data volume was never migrated; v2 started an empty embedded PostgreSQL beside it"
		}
		d.mismatch = "a v2 image on SQLite data"
		d.add(Finding{Code: CodeEraMismatch, Severity: Critical,
			Summary: fmt.Sprintf("%s (v2), but %s", how, where),
			Detail: "v2 keeps its data in an embedded PostgreSQL and ignores database.db unless GPUSTACK_DATA_MIGRATION=true: it comes up " +
				"empty (no users, models or API keys) while the SQLite data stays untouched. `latest` switched from v0.7 " +
				"to v2 when v2.0.0 was tagged.",
			Evidence: evidence,
		})
	case s.era == catalog.EngineSQLite && (db.Status == observe.DBUnsupported || db.Status == observe.DBRead) && db.Engine == catalog.EngineEmbeddedPostgres:
		d.mismatch = "a v0.x image on v2 data"
		d.add(Finding{Code: CodeEraMismatch, Severity: Critical,
			Summary: fmt.Sprintf("%s (SQLite era), but the data volume holds v2's embedded PostgreSQL", how),
			Detail: "A v0.x image ignores postgresql/ and opens (or creates) database.db: it serves old or empty data, " +
				"and v2 writes the same directory (#3575). Run the v2 release that wrote the data.",
			Evidence: evidence,
		})
	}
}

func eraName(e catalog.Engine) string {
	if e == catalog.EngineSQLite {
		return "v0.x"
	}
	return "v2"
}
