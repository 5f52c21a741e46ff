package catalog

import (
	"sort"
	"strings"
)

// Probe is the schema a database stamped with a revision must have: table
// name to column names, each list sorted. Extra tables and columns are
// allowed, since GPUStack's create_all adds some outside migrations.
type Probe struct {
	Tables map[string][]string `json:"tables"`
}

// Missing is one part of a probe a database lacks. Column is empty when the
// whole table is missing.
type Missing struct {
	Table  string `json:"table"`
	Column string `json:"column,omitempty"`
}

func (m Missing) String() string {
	if m.Column == "" {
		return "table " + m.Table
	}
	return m.Table + "." + m.Column
}

// Check compares the probe with the tables and columns a database has and
// returns what is missing, sorted by table then column. A missing table is
// reported once, not per column.
func (p Probe) Check(have map[string][]string) []Missing {
	var out []Missing
	for _, table := range sortedKeys(p.Tables) {
		cols, ok := have[table]
		if !ok {
			out = append(out, Missing{Table: table})
			continue
		}
		present := make(map[string]bool, len(cols))
		for _, c := range cols {
			present[strings.ToLower(c)] = true
		}
		for _, c := range p.Tables[table] {
			if !present[strings.ToLower(c)] {
				out = append(out, Missing{Table: table, Column: c})
			}
		}
	}
	return out
}

// Has reports whether the probe requires the column (or, with an empty
// column, the table).
func (p Probe) Has(table, column string) bool {
	cols, ok := p.Tables[table]
	if !ok || column == "" {
		return ok
	}
	for _, c := range cols {
		if c == column {
			return true
		}
	}
	return false
}

// apply folds a revision's delta into a copy of the probe.
func (p Probe) apply(r Revision) Probe {
	next := make(map[string]map[string]bool, len(p.Tables)+len(r.Adds))
	for t, cols := range p.Tables {
		next[t] = setOf(cols)
	}
	for _, rn := range r.Renames {
		if rn.Column == "" {
			next[rn.To] = next[rn.Table]
			delete(next, rn.Table)
			continue
		}
		if cols, ok := next[rn.Table]; ok {
			delete(cols, rn.Column)
			cols[rn.To] = true
		}
	}
	for t, cols := range r.Adds {
		if next[t] == nil {
			next[t] = map[string]bool{}
		}
		for _, c := range cols {
			next[t][c] = true
		}
	}
	for t, cols := range r.Drops {
		for _, c := range cols {
			delete(next[t], c)
		}
	}
	for _, t := range r.DropTables {
		delete(next, t)
	}
	out := Probe{Tables: make(map[string][]string, len(next))}
	for t, cols := range next {
		out.Tables[t] = sortedKeys(cols)
	}
	return out
}

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Traces returns the parts of the revision after rev that a database
// stamped rev already has (have maps table names to their columns): the
// trace of a migration that half-applied without stamping (#1084). The
// next start re-runs that migration and fails on them ("duplicate column
// name"). Column names compare case-insensitively, as SQLite's do.
func (c *Catalog) Traces(rev string, have map[string][]string) []Missing {
	i, ok := c.byRev[rev]
	if !ok || i+1 >= len(c.revisions) {
		return nil
	}
	before, next := c.revisions[i].probe, c.revisions[i+1]
	var found []Missing
	for _, table := range sortedKeys(next.Adds) {
		cols, exists := have[table]
		if !exists {
			continue
		}
		if !before.Has(table, "") {
			found = append(found, Missing{Table: table})
			continue
		}
		present := make(map[string]bool, len(cols))
		for _, col := range cols {
			present[strings.ToLower(col)] = true
		}
		for _, col := range next.Adds[table] {
			if present[strings.ToLower(col)] && !before.Has(table, col) {
				found = append(found, Missing{Table: table, Column: col})
			}
		}
	}
	return found
}
