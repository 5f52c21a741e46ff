package planner

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/planner/plantest"
)

// TestJumpCarriesWhatTheExecutorNeeds: the executor of migrate-data reads
// the method of the backup, the revisions, the steps and the rows from the
// plan alone.
func TestJumpCarriesWhatTheExecutorNeeds(t *testing.T) {
	od := plantest.Running(t, plantest.Deployment("v0.7.1", "cpu"), "d19176de3b74")
	od.Database.Rows = plantest.JumpRows()
	p := planOne(t, plantest.V2Deployment("v2.2.3"), od)
	d := p.Deployments[0]
	backup, ok := d.Action(plan.ActionBackupDatabase)
	if !ok || backup.Method != plan.MethodVolume || backup.Subject != "gpustack-prod-data" || backup.Reason != plan.ReasonEraChange {
		t.Errorf("backup %+v: want the whole data volume (method volume) for the era change", backup)
	}
	m, ok := d.Action(plan.ActionMigrateData)
	if !ok {
		t.Fatal("no migrate-data action")
	}
	if m.From != "d19176de3b74" || m.To != "c4d7e8f9a0b1" || m.Reason != plan.ReasonEraChange {
		t.Errorf("migrate-data %s -> %s (%s), want d19176de3b74 -> c4d7e8f9a0b1 for the era change", m.From, m.To, m.Reason)
	}
	if len(m.Steps) == 0 || m.Steps[0].Revision != "924c9a0b4c13" || m.Steps[len(m.Steps)-1].Revision != "c4d7e8f9a0b1" {
		t.Errorf("steps %+v: want every v2 revision after d19176de3b74 up to the head", m.Steps)
	}
	var tables []string
	for _, r := range m.Rows {
		tables = append(tables, r.Table)
		if r.Rows != plantest.JumpRows()[r.Table] {
			t.Errorf("rows of %s = %d, want %d", r.Table, r.Rows, plantest.JumpRows()[r.Table])
		}
	}
	if got, want := strings.Join(tables, ","), strings.Join(catalog.MigratedTables(), ","); got != want {
		t.Errorf("tables %s, want %s in GPUStack's copy order", got, want)
	}
	if !strings.Contains(m.Detail, "1591 rows") || !strings.Contains(m.Detail, "system_loads 1440") {
		t.Errorf("detail %q should count the rows copied", m.Detail)
	}
	var kinds []string
	for _, a := range d.Actions {
		kinds = append(kinds, a.Kind.String())
	}
	want := "back up database,migrate data to PostgreSQL,replace container,verify,remove previous container"
	if got := strings.Join(kinds, ","); got != want {
		t.Errorf("actions %s, want %s", got, want)
	}
	replace, _ := d.Action(plan.ActionReplaceContainer)
	if replace.Reason != plan.ReasonDataMigrated || !strings.Contains(replace.Detail, "GPUSTACK_DATA_MIGRATION") {
		t.Errorf("replace %+v: want the recreate without the switch", replace)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back plan.Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if m2, _ := back.Deployments[0].Action(plan.ActionMigrateData); len(m2.Rows) != len(m.Rows) || m2.Rows[0] != m.Rows[0] {
		t.Errorf("the rows do not survive JSON: %+v", m2.Rows)
	}
}

// TestEraRefusalsCarryRemedies: every refusal about eras says what to do.
func TestEraRefusalsCarryRemedies(t *testing.T) {
	jumpFrom := func(rev string) *observe.Deployment {
		return plantest.Running(t, plantest.Deployment("v0.7.1", "cpu"), rev)
	}
	migratedV2 := func() *observe.Deployment {
		od := plantest.Running(t, plantest.V2Deployment("v2.2.3"), "c4d7e8f9a0b1")
		od.Database = plantest.PostgresDatabase(t, "c4d7e8f9a0b1")
		od.Database.MigrationDone = true
		return od
	}
	tests := []struct {
		name   string
		d      config.Deployment
		od     *observe.Deployment
		code   plan.RefusalCode
		remedy []string
	}{
		{"v2.0.0 target", plantest.V2Deployment("v2.0.0"), jumpFrom("d19176de3b74"), plan.RefuseDataMigrationBlocked, []string{`version = "v2.2.3"`}},
		{"dev tag target allowed by policy", func() config.Deployment {
			d := plantest.V2Deployment("dev")
			d.Policy.AllowDev = true
			return d
		}(), jumpFrom("d19176de3b74"), plan.RefuseDataMigrationBlocked, []string{`version = "v2.2.3"`}},
		{"v2 data back to v0.x after a jump", plantest.Deployment("v0.7.1", "cpu"), migratedV2(), plan.RefuseEraChange, []string{"whole-volume backup taken before the jump", "gpustack-deploy restore"}},
		{"failed jump", plantest.V2Deployment("v2.2.3"), func() *observe.Deployment {
			od := plantest.Running(t, plantest.V2Deployment("v2.2.3"), "c4d7e8f9a0b1")
			od.Container.Env = append(od.Container.Env, "GPUSTACK_MIGRATION_DATA_DIR=/var/lib/gpustack")
			od.Database = plantest.PostgresDatabase(t, "c4d7e8f9a0b1")
			return od
		}(), plan.RefuseFailedDataMigration, []string{"method volume", "gpustack-deploy restore", "postgresql/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := planOne(t, tt.d, tt.od).Deployments[0].Refusals
			if len(r) != 1 || r[0].Code != tt.code {
				t.Fatalf("refusals %+v, want one %s", r, tt.code)
			}
			for _, s := range tt.remedy {
				if !strings.Contains(r[0].Remedy, s) {
					t.Errorf("remedy %q lacks %q", r[0].Remedy, s)
				}
			}
			if r[0].Detail == "" || r[0].Summary == "" {
				t.Errorf("refusal without summary or detail: %+v", r[0])
			}
		})
	}
	// A v2 installation that never jumped has no volume backup to point at.
	fresh := migratedV2()
	fresh.Database.MigrationDone = false
	r := planOne(t, plantest.Deployment("v0.7.1", "cpu"), fresh).Deployments[0].Refusals
	if len(r) != 1 || strings.Contains(r[0].Remedy, "before the jump") {
		t.Errorf("a v2 installation that never jumped: %+v", r)
	}
}

// TestCompletedColumnRemedy: the #5774 refusal gives the repair and how to run it.
func TestCompletedColumnRemedy(t *testing.T) {
	for _, rev := range []string{"b2c3d4e5f6a7", "c4d7e8f9a0b1"} {
		od := plantest.Running(t, plantest.V2Deployment("v2.2.2"), rev)
		od.Database = plantest.PostgresDatabase(t, rev)
		od.Database.Tables["model_usage_details"] = without(od.Database.Tables["model_usage_details"], "completed")
		r := planOne(t, plantest.V2Deployment("v2.2.3"), od).Deployments[0].Refusals
		if len(r) != 1 || r[0].Code != plan.RefuseProbeMismatch {
			t.Fatalf("%s: want one probe refusal, got %+v", rev, r)
		}
		for _, s := range []string{
			"docker exec gpustack-prod psql -h 127.0.0.1 -U root -d gpustack -c '",
			"ALTER TABLE model_usage_details ADD COLUMN IF NOT EXISTS completed boolean NOT NULL DEFAULT false;",
			"plan again",
		} {
			if !strings.Contains(r[0].Remedy, s) {
				t.Errorf("%s: remedy %q lacks %q", rev, r[0].Remedy, s)
			}
		}
		if strings.Contains(r[0].Remedy, "model_usage_details_archive") {
			t.Errorf("%s: only the missing table is repaired: %q", rev, r[0].Remedy)
		}
		if !strings.Contains(r[0].Detail, "#5774") {
			t.Errorf("%s: detail %q should name the issue", rev, r[0].Detail)
		}
	}
	// A moved embedded PostgreSQL is reached on its port.
	od := plantest.Running(t, plantest.V2Deployment("v2.2.1"), "b2c3d4e5f6a7")
	od.Database = plantest.PostgresDatabase(t, "b2c3d4e5f6a7")
	od.Database.Tables["model_usage_details"] = without(od.Database.Tables["model_usage_details"], "completed")
	moved := plantest.V2Deployment("v2.2.3")
	moved.Args = []config.Value{{S: "--database-port=5433"}}
	if r := planOne(t, moved, od).Deployments[0].Refusals; len(r) != 1 || !strings.Contains(r[0].Remedy, "psql -h 127.0.0.1 -p 5433 -U root") {
		t.Errorf("the remedy must use --database-port: %+v", r)
	}
	// Anything else missing keeps the generic remedy.
	od = plantest.Running(t, plantest.V2Deployment("v2.2.2"), "c4d7e8f9a0b1")
	od.Database = plantest.PostgresDatabase(t, "c4d7e8f9a0b1")
	delete(od.Database.Tables, "metered_usage")
	r := planOne(t, plantest.V2Deployment("v2.2.3"), od).Deployments[0].Refusals
	if len(r) != 1 || strings.Contains(r[0].Remedy, "ALTER TABLE") {
		t.Errorf("a missing table is not #5774: %+v", r)
	}
}

// TestExternalURLNeverInThePlan: the plan of an external database names
// its scheme only.
func TestExternalURLNeverInThePlan(t *testing.T) {
	old := external(plantest.V2Deployment("v2.1.2"), config.SchemePostgreSQL)
	od := plantest.Running(t, old, "8ad0f94c92e8")
	od.Database = observe.Database{Status: observe.DBAbsent}
	d := external(plantest.V2Deployment("v2.2.3"), config.SchemePostgreSQL)
	p := planOne(t, d, od)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(b), p.String()} {
		if strings.Contains(s, "db.example") || strings.Contains(s, ":pw@") {
			t.Errorf("the plan reveals the URL:\n%s", s)
		}
	}
	backup, _ := p.Deployments[0].Action(plan.ActionBackupDatabase)
	if backup.Method != plan.MethodExternalDump || len(p.Deployments[0].Refusals) > 0 {
		t.Errorf("backup method %q, refusals %+v: want an external-dump backup", backup.Method, p.Deployments[0].Refusals)
	}
	// MySQL is dumped the same way (mysqldump).
	my := external(plantest.V2Deployment("v2.2.3"), config.SchemeMySQL)
	if b, ok := planOne(t, my, od).Deployments[0].Action(plan.ActionBackupDatabase); !ok || b.Method != plan.MethodExternalDump {
		t.Errorf("an external MySQL database: backup %+v, want an external dump", b)
	}
	my.Backup.ExternalAcknowledged = true
	if p := planOne(t, my, od); len(p.Deployments[0].Refusals) > 0 {
		t.Errorf("acknowledged MySQL: want no refusal, got %s", p)
	} else if _, ok := p.Deployments[0].Action(plan.ActionBackupDatabase); ok {
		t.Errorf("acknowledged MySQL: want no backup, got %s", p)
	}
	verify, _ := p.Deployments[0].Action(plan.ActionVerify)
	if verify.To != "" {
		t.Errorf("verify checks revision %q of a database it cannot read", verify.To)
	}
	if got := p.Deployments[0].Target.Database; got != "external postgresql database" {
		t.Errorf("target database %q", got)
	}
	// Nothing changes: no warnings, no actions.
	same := plantest.Running(t, d, "c4d7e8f9a0b1")
	same.Database = observe.Database{Status: observe.DBAbsent}
	if p := planOne(t, d, same); p.HasChanges() || len(p.Deployments[0].Warnings) > 0 {
		t.Errorf("an unchanged external deployment: %s", p)
	}
}

// TestExternalReadGatesLikeTheEmbeddedDatabase: once observe reads the
// external PostgreSQL, its revision and columns gate the plan as the
// embedded database's do.
func TestExternalReadGatesLikeTheEmbeddedDatabase(t *testing.T) {
	running := func(t *testing.T, ext *observe.Database) *observe.Deployment {
		od := plantest.Running(t, external(plantest.V2Deployment("v2.1.2"), config.SchemePostgreSQL), "8ad0f94c92e8")
		od.Database = observe.Database{Status: observe.DBAbsent}
		od.External = ext
		return od
	}
	read := func(t *testing.T, rev string) *observe.Database {
		db := plantest.PostgresDatabase(t, rev)
		db.Engine = ""
		return &db
	}
	target := external(plantest.V2Deployment("v2.2.3"), config.SchemePostgreSQL)

	// Read at the running head: the usual upgrade, migration from the read revision.
	p := planOne(t, target, running(t, read(t, "8ad0f94c92e8")))
	d := p.Deployments[0]
	if len(d.Refusals) > 0 {
		t.Fatalf("refused: %s", p)
	}
	m, ok := d.Action(plan.ActionMigrate)
	if !ok || m.From != "8ad0f94c92e8" || m.To != "c4d7e8f9a0b1" || m.Reason != plan.ReasonRevisionBehind {
		t.Errorf("migrate %+v, want 8ad0f94c92e8 -> c4d7e8f9a0b1 because the database is behind", m)
	}
	if b, _ := d.Action(plan.ActionBackupDatabase); b.From != "8ad0f94c92e8" || b.Method != plan.MethodExternalDump {
		t.Errorf("backup %+v, want an external dump expected at 8ad0f94c92e8", b)
	}
	if d.Current.Revision != "8ad0f94c92e8" || !strings.Contains(d.Current.Database, "read") {
		t.Errorf("current state %+v does not show the read revision", d.Current)
	}

	cases := []struct {
		name string
		ext  *observe.Database
		code plan.RefusalCode
	}{
		{"read ahead of the running release's head", read(t, "c4d7e8f9a0b1"), 0},
		{"stamped by a dev image", func() *observe.Database {
			db := read(t, "8ad0f94c92e8")
			db.Revision = "a7c1b20f9d3e"
			return db
		}(), plan.RefuseDevRevision},
		{"#5774 gap", func() *observe.Database {
			db := read(t, "b2c3d4e5f6a7")
			db.Tables["model_usage_details"] = without(db.Tables["model_usage_details"], "completed")
			return db
		}(), plan.RefuseProbeMismatch},
	}
	for _, c := range cases {
		r := planOne(t, target, running(t, c.ext)).Deployments[0].Refusals
		switch {
		case c.code == 0 && len(r) > 0:
			t.Errorf("%s: refused %+v", c.name, r)
		case c.code != 0 && (len(r) != 1 || r[0].Code != c.code):
			t.Errorf("%s: refusals %+v, want %s", c.name, r, c.code)
		}
	}
	// Newer than the target: a downgrade of the external database.
	ahead := planOne(t, external(plantest.V2Deployment("v2.1.2"), config.SchemePostgreSQL), running(t, read(t, "c4d7e8f9a0b1")))
	if r := ahead.Deployments[0].Refusals; len(r) != 1 || r[0].Code != plan.RefuseDatabaseAhead {
		t.Errorf("an external database ahead of the target: refusals %+v, want database-ahead", r)
	}
	// Unreadable: a warning, and the label's revision is expected.
	bad := &observe.Database{Status: observe.DBUnknown, Reason: "psql exited 2: connection refused"}
	p = planOne(t, target, running(t, bad))
	if len(p.Deployments[0].Refusals) > 0 || !strings.Contains(p.String(), "WARNING the external database could not be read") {
		t.Errorf("unreadable external database: %s", p)
	}
}
