package emulator

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// The v2 chain in MySQL (MariaDB) dialect, translated from the PostgreSQL
// DDL of pgChain by myTranslator, statement by statement, with what the
// chain created so far as its state (column types, nullability and
// defaults, which MySQL's MODIFY COLUMN must repeat). The translation is
// deterministic: the whole chain is translated from the base step on every
// run, whatever revision the database is at.
//
// Choices: enum types become VARCHAR(64) (CREATE/ALTER/DROP TYPE vanish;
// RENAME VALUE becomes UPDATEs of the columns of that type), VARCHAR
// without a length VARCHAR(255), TIMESTAMP DATETIME(6), SERIAL an
// AUTO_INCREMENT INTEGER, inline REFERENCES a FOREIGN KEY clause, DROP
// CONSTRAINT (of unique keys) DROP INDEX. Statements that MySQL cannot run
// as PostgreSQL wrote them are rewritten by hand below.

// myDropFKMarker starts a pseudo-statement "-- drop foreign keys <table>
// [<column>]": the migrator drops the table's foreign keys (on that
// column) found in information_schema, as dropForeignKeys does on
// PostgreSQL, and before DROP COLUMN, which MySQL refuses on a column a
// foreign key uses.
const myDropFKMarker = "-- drop foreign keys "

type myColumn struct {
	typ, dflt, enum string
	notNull         bool
}

type myTranslator struct {
	enums map[string]bool
	cols  map[string]map[string]*myColumn
}

func newMyTranslator() *myTranslator {
	return &myTranslator{enums: map[string]bool{}, cols: map[string]map[string]*myColumn{}}
}

// myHandWritten replaces PostgreSQL-only expressions inside statements.
var myHandWritten = []struct{ pg, my string }{
	{"'system/cluster-' || id", "CONCAT('system/cluster-', id)"},
	{"model_scope_model_id || coalesce(':' || model_scope_file_path, '')", "CONCAT(model_scope_model_id, coalesce(CONCAT(':', model_scope_file_path), ''))"},
	// MySQL cannot select from the table an UPDATE writes (error 1093).
	{"WHERE id = (SELECT min(id) FROM clusters)", "WHERE id = (SELECT m FROM (SELECT min(id) AS m FROM clusters) AS first_cluster)"},
	{"json_build_array(", "JSON_ARRAY("},
	{"json_build_object(", "JSON_OBJECT("},
	{"random()", "rand()"},
	{`"timestamp"`, "`timestamp`"},
	{"TIMESTAMP WITHOUT TIME ZONE", "DATETIME(6)"},
	{"BIGSERIAL PRIMARY KEY", "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY"},
	{"SERIAL PRIMARY KEY", "INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY"},
	{"DOUBLE PRECISION", "DOUBLE"},
}

var (
	reMyCreateType  = regexp.MustCompile(`^CREATE TYPE (\w+) AS ENUM`)
	reMyAlterType   = regexp.MustCompile(`^ALTER TYPE (\w+) ADD VALUE`)
	reMyRenameValue = regexp.MustCompile(`^ALTER TYPE (\w+) RENAME VALUE '(\w+)' TO '(\w+)'$`)
	reMyDropType    = regexp.MustCompile(`^DROP TYPE \w+$`)
	reMyDoFK        = regexp.MustCompile(`(?s)^DO \$\$.*conrelid = '(\w+)'::regclass`)
	reMyCast        = regexp.MustCompile(`::[a-z_]+`)
	reMyVarchar     = regexp.MustCompile(`\bVARCHAR\b(\(\d+\))?`)
	reMyJSONText    = regexp.MustCompile(`(\w+)->>'(\w+)'`)
	reMyCreateTable = regexp.MustCompile(`(?s)^CREATE TABLE (IF NOT EXISTS )?(\w+) \((.*)\)$`)
	reMyAddColumn   = regexp.MustCompile(`(?s)^ALTER TABLE (\w+) ADD COLUMN (IF NOT EXISTS )?(.*)$`)
	reMyDropColumn  = regexp.MustCompile(`^ALTER TABLE (\w+) DROP COLUMN (\w+)$`)
	reMyAlterColumn = regexp.MustCompile(`^ALTER TABLE (\w+) ALTER COLUMN (\w+) (.*)$`)
	reMyDropConstr  = regexp.MustCompile(`^ALTER TABLE (\w+) DROP CONSTRAINT (\w+)$`)
	reMyRenameTable = regexp.MustCompile(`^ALTER TABLE (\w+) RENAME TO (\w+)$`)
	reMyRenameCol   = regexp.MustCompile(`^ALTER TABLE (\w+) RENAME COLUMN (\w+) TO (\w+)$`)
	reMyReferences  = regexp.MustCompile(`\s*REFERENCES (\w+ \(\w+\))( ON DELETE (?:CASCADE|RESTRICT|SET NULL))?`)
	reMyDefault     = regexp.MustCompile(`\bDEFAULT ('[^']*'|\S+)`)
)

// myReserved are column names of the chain that MySQL reserves.
var myReserved = map[string]bool{"key": true}

// translate returns the MySQL statements for one PostgreSQL statement.
func (tr *myTranslator) translate(pg string) ([]string, error) {
	s := strings.TrimSpace(pg)
	if m := reMyCreateType.FindStringSubmatch(s); m != nil {
		tr.enums[m[1]] = true
		return nil, nil
	}
	if reMyAlterType.MatchString(s) || reMyDropType.MatchString(s) {
		return nil, nil
	}
	if m := reMyRenameValue.FindStringSubmatch(s); m != nil {
		var out []string
		for _, t := range sortedKeys(tr.cols) {
			for _, c := range sortedKeys(tr.cols[t]) {
				if tr.cols[t][c].enum == m[1] {
					out = append(out, fmt.Sprintf("UPDATE %s SET %s = '%s' WHERE %s = '%s'", t, c, m[3], c, m[2]))
				}
			}
		}
		return out, nil
	}
	if m := reMyDoFK.FindStringSubmatch(s); m != nil {
		return []string{myDropFKMarker + m[1]}, nil
	}
	for _, h := range myHandWritten {
		s = strings.ReplaceAll(s, h.pg, h.my)
	}
	s = reMyJSONText.ReplaceAllString(s, "JSON_UNQUOTE(JSON_EXTRACT($1, '$$.$2'))")
	s = reMyCast.ReplaceAllString(s, "")
	s = reMyVarchar.ReplaceAllStringFunc(s, func(v string) string {
		if v == "VARCHAR" {
			return "VARCHAR(255)"
		}
		return v
	})
	if strings.Contains(s, "||") || strings.Contains(s, "$") && !strings.Contains(s, "'$.") {
		return nil, fmt.Errorf("no MySQL translation for %q", pg)
	}

	if m := reMyCreateTable.FindStringSubmatch(s); m != nil {
		table := m[2]
		tr.cols[table] = map[string]*myColumn{}
		var items, fks []string
		for _, item := range splitTopLevel(m[3]) {
			def, fk := tr.column(table, item)
			items = append(items, def)
			if fk != "" {
				fks = append(fks, fk)
			}
		}
		return []string{fmt.Sprintf("CREATE TABLE %s%s (%s)", m[1], table, strings.Join(append(items, fks...), ",\n\t"))}, nil
	}
	if m := reMyAddColumn.FindStringSubmatch(s); m != nil {
		def, fk := tr.column(m[1], m[3])
		out := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s%s", m[1], m[2], def)
		if fk != "" {
			out += ", ADD " + fk
		}
		return []string{out}, nil
	}
	if m := reMyDropColumn.FindStringSubmatch(s); m != nil {
		delete(tr.cols[m[1]], m[2])
		return []string{myDropFKMarker + m[1] + " " + m[2], s}, nil
	}
	if m := reMyAlterColumn.FindStringSubmatch(s); m != nil {
		table, col, action := m[1], m[2], m[3]
		c := tr.cols[table][col]
		if c == nil {
			return nil, fmt.Errorf("no MySQL translation for %q: column %s.%s unknown", pg, table, col)
		}
		switch {
		case action == "DROP DEFAULT":
			c.dflt = ""
			return []string{s}, nil
		case strings.HasPrefix(action, "SET DEFAULT "):
			c.dflt = strings.TrimPrefix(action, "SET DEFAULT ")
			return []string{s}, nil
		case action == "DROP NOT NULL":
			c.notNull = false
		case action == "SET NOT NULL":
			c.notNull = true
		case strings.HasPrefix(action, "TYPE "):
			typ, _, _ := strings.Cut(strings.TrimPrefix(action, "TYPE "), " USING")
			c.typ, c.enum = tr.typeOf(typ)
		default:
			return nil, fmt.Errorf("no MySQL translation for %q", pg)
		}
		return []string{fmt.Sprintf("ALTER TABLE %s MODIFY COLUMN %s %s", table, myIdent(col), c.spec())}, nil
	}
	if m := reMyDropConstr.FindStringSubmatch(s); m != nil {
		return []string{fmt.Sprintf("ALTER TABLE %s DROP INDEX %s", m[1], m[2])}, nil
	}
	if m := reMyRenameTable.FindStringSubmatch(s); m != nil {
		tr.cols[m[2]] = tr.cols[m[1]]
		delete(tr.cols, m[1])
		return []string{s}, nil
	}
	if m := reMyRenameCol.FindStringSubmatch(s); m != nil {
		tr.cols[m[1]][m[3]] = tr.cols[m[1]][m[2]]
		delete(tr.cols[m[1]], m[2])
		return []string{s}, nil
	}
	return []string{s}, nil
}

// column translates one item of a table body or ADD COLUMN: a column
// definition is recorded and loses its inline REFERENCES, returned as a
// FOREIGN KEY clause; constraints pass unchanged.
func (tr *myTranslator) column(table, item string) (def, fk string) {
	item = strings.TrimSpace(item)
	first, rest, _ := strings.Cut(item, " ")
	switch first {
	case "CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN":
		return item, ""
	}
	if m := reMyReferences.FindStringSubmatch(rest); m != nil {
		fk = fmt.Sprintf("FOREIGN KEY (%s) REFERENCES %s%s", myIdent(first), m[1], m[2])
		rest = strings.Replace(rest, m[0], "", 1)
	}
	typ, attrs, _ := strings.Cut(rest, " ")
	c := &myColumn{notNull: strings.Contains(attrs, "NOT NULL")}
	c.typ, c.enum = tr.typeOf(typ)
	if m := reMyDefault.FindStringSubmatch(attrs); m != nil {
		c.dflt = m[1]
	}
	if tr.cols[table] == nil {
		tr.cols[table] = map[string]*myColumn{}
	}
	tr.cols[table][strings.Trim(first, "`")] = c
	if attrs != "" {
		attrs = " " + attrs
	}
	return myIdent(first) + " " + c.typ + attrs, fk
}

// typeOf maps an enum type to VARCHAR(64), naming the enum.
func (tr *myTranslator) typeOf(typ string) (string, string) {
	if tr.enums[typ] {
		return "VARCHAR(64)", typ
	}
	return typ, ""
}

func (c *myColumn) spec() string {
	s := c.typ
	if c.notNull {
		s += " NOT NULL"
	} else {
		s += " NULL"
	}
	if c.dflt != "" {
		s += " DEFAULT " + c.dflt
	}
	return s
}

func myIdent(name string) string {
	if myReserved[name] {
		return "`" + name + "`"
	}
	return name
}

// splitTopLevel splits a table body at the commas outside parentheses.
func splitTopLevel(body string) []string {
	var out []string
	depth, start := 0, 0
	inQuote := false
	for i, r := range body {
		switch {
		case r == '\'':
			inQuote = !inQuote
		case inQuote:
		case r == '(':
			depth++
		case r == ')':
			depth--
		case r == ',' && depth == 0:
			out = append(out, body[start:i])
			start = i + 1
		}
	}
	return append(out, body[start:])
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// myChain translates the whole chain under the options: the MySQL
// statements of each revision, by id.
func myChain(o pgOptions) (map[string][]string, error) {
	tr := newMyTranslator()
	out := make(map[string][]string, len(pgChain))
	for _, r := range pgChain {
		var stmts []string
		for _, s := range r.statements(o) {
			my, err := tr.translate(s)
			if err != nil {
				return nil, fmt.Errorf("revision %s: %w", r.ID, err)
			}
			stmts = append(stmts, my...)
		}
		out[r.ID] = stmts
	}
	return out, nil
}
