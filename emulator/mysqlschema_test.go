package emulator

import (
	"strings"
	"testing"
)

func TestMyTranslate(t *testing.T) {
	tr := newMyTranslator()
	cases := []struct {
		pg   string
		want []string
	}{
		{"CREATE TYPE sourceenum AS ENUM ('A', 'B')", nil},
		{"CREATE TABLE t (id SERIAL PRIMARY KEY, created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,\n\tsource sourceenum NOT NULL DEFAULT 'A',\n\tkey VARCHAR NOT NULL,\n\tu_id INTEGER REFERENCES users (id) ON DELETE CASCADE,\n\tratio DOUBLE PRECISION,\n\tCONSTRAINT t_key UNIQUE (key))",
			[]string{"CREATE TABLE t (id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,\n\tcreated_at DATETIME(6) NOT NULL,\n\tsource VARCHAR(64) NOT NULL DEFAULT 'A',\n\t`key` VARCHAR(255) NOT NULL,\n\tu_id INTEGER,\n\tratio DOUBLE,\n\tCONSTRAINT t_key UNIQUE (key),\n\tFOREIGN KEY (u_id) REFERENCES users (id) ON DELETE CASCADE)"}},
		{"ALTER TABLE t ALTER COLUMN source DROP NOT NULL", []string{"ALTER TABLE t MODIFY COLUMN source VARCHAR(64) NULL DEFAULT 'A'"}},
		{"ALTER TABLE t ALTER COLUMN source DROP DEFAULT", []string{"ALTER TABLE t ALTER COLUMN source DROP DEFAULT"}},
		{"ALTER TABLE t ALTER COLUMN source TYPE VARCHAR(32) USING source::text", []string{"ALTER TABLE t MODIFY COLUMN source VARCHAR(32) NULL"}},
		{"ALTER TABLE t ADD COLUMN o INTEGER REFERENCES principals (id)", []string{"ALTER TABLE t ADD COLUMN o INTEGER, ADD FOREIGN KEY (o) REFERENCES principals (id)"}},
		{"ALTER TABLE t ALTER COLUMN o SET NOT NULL", []string{"ALTER TABLE t MODIFY COLUMN o INTEGER NOT NULL"}},
		{"ALTER TABLE t ADD COLUMN IF NOT EXISTS n VARCHAR", []string{"ALTER TABLE t ADD COLUMN IF NOT EXISTS n VARCHAR(255)"}},
		{"ALTER TABLE t DROP COLUMN u_id", []string{myDropFKMarker + "t u_id", "ALTER TABLE t DROP COLUMN u_id"}},
		{"ALTER TABLE t DROP CONSTRAINT t_key", []string{"ALTER TABLE t DROP INDEX t_key"}},
		{"ALTER TYPE sourceenum ADD VALUE 'C'", nil},
		{"ALTER TABLE t RENAME TO u", []string{"ALTER TABLE t RENAME TO u"}},
		{"CREATE TYPE kindenum AS ENUM ('X')", nil},
		{"ALTER TABLE u ADD COLUMN k kindenum", []string{"ALTER TABLE u ADD COLUMN k VARCHAR(64)"}},
		{"ALTER TYPE kindenum RENAME VALUE 'X' TO 'Y'", []string{"UPDATE u SET k = 'Y' WHERE k = 'X'"}},
		{"UPDATE u SET k = CASE WHEN x THEN 'X'::kindenum END", []string{"UPDATE u SET k = CASE WHEN x THEN 'X' END"}},
		{dropForeignKeys("model_usages"), []string{myDropFKMarker + "model_usages"}},
		{"UPDATE c SET r = worker_config->>'registry' WHERE worker_config IS NOT NULL", []string{"UPDATE c SET r = JSON_UNQUOTE(JSON_EXTRACT(worker_config, '$.registry')) WHERE worker_config IS NOT NULL"}},
	}
	for _, c := range cases {
		got, err := tr.translate(c.pg)
		if err != nil {
			t.Errorf("%q: %v", c.pg, err)
			continue
		}
		if strings.Join(got, "\n--\n") != strings.Join(c.want, "\n--\n") {
			t.Errorf("%q:\n got %q\nwant %q", c.pg, got, c.want)
		}
	}
	if _, err := tr.translate("UPDATE t SET a = b || c"); err == nil {
		t.Error("|| translated silently")
	}
}

// TestMyChainTranslates: every revision of every option set translates,
// and no PostgreSQL-only syntax is left.
func TestMyChainTranslates(t *testing.T) {
	for _, o := range []pgOptions{{}, {gap5774: true}, {alwaysDefaultCluster: true}} {
		chain, err := myChain(o)
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != len(pgChain) {
			t.Fatalf("%d revisions translated, want %d", len(chain), len(pgChain))
		}
		for id, stmts := range chain {
			for _, s := range stmts {
				for _, bad := range []string{"SERIAL", "TIMESTAMP WITHOUT", "::", "||", "DOUBLE PRECISION", "enum", "$$", "->>", "DROP CONSTRAINT", "ALTER TYPE", "CREATE TYPE", "VARCHAR ", "VARCHAR,", "VARCHAR\n", "json_build"} {
					if strings.Contains(s, bad) && !strings.HasPrefix(s, myDropFKMarker) {
						t.Errorf("%s: %q left in %q", id, bad, s)
					}
				}
				if strings.HasSuffix(s, "VARCHAR") {
					t.Errorf("%s: VARCHAR without length in %q", id, s)
				}
			}
		}
		// 2aed534bd7b2 opens with ADD COLUMNs: its injected failure leaves
		// them applied (#3202).
		if first := chain["2aed534bd7b2"][0]; first != "ALTER TABLE workers ADD COLUMN proxy_mode VARCHAR(64)" {
			t.Errorf("2aed534bd7b2 starts with %q", first)
		}
	}
}
