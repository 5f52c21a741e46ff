package plan

import (
	"encoding/json"
	"testing"
)

func TestEverySlugRoundTrips(t *testing.T) {
	for k := range actionNames {
		if _, ok := actionSlugs[k]; !ok {
			t.Errorf("action %v has no slug", k)
		}
	}
	for r := range reasonTexts {
		if _, ok := reasonSlugs[r]; !ok {
			t.Errorf("reason %v has no slug", r)
		}
	}
	seen := map[string]bool{}
	for _, s := range actionSlugs {
		if seen[s] {
			t.Errorf("slug %q used twice", s)
		}
		seen[s] = true
	}
	in := Deployment{Actions: []Action{{Kind: ActionMigrate, Reason: ReasonRevisionBehind}}, Refusals: []Refusal{{Code: RefuseDevTag}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Deployment
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Actions[0].Kind != ActionMigrate || out.Actions[0].Reason != ReasonRevisionBehind || out.Refusals[0].Code != RefuseDevTag {
		t.Errorf("round trip changed values: %s -> %+v", b, out)
	}
	if err := json.Unmarshal([]byte(`{"kind":"no-such-action"}`), &Action{}); err == nil {
		t.Error("an unknown action name must be an error")
	}
}

// TestPersistedNumbers pins the numbers saved plans hold: a renumbered
// value would change the meaning of every plan saved before.
func TestPersistedNumbers(t *testing.T) {
	pinned := map[RefusalCode]int{RefuseEraChange: 12, RefuseCannotMeasure: 18, RefuseDataMigrationBlocked: 19, RefuseFailedDataMigration: 20}
	for c, n := range pinned {
		if int(c) != n {
			t.Errorf("%s is %d, want %d", c, int(c), n)
		}
	}
	if ActionMigrateData != 16 || ReasonEraChange != 24 || ReasonDataMigrated != 25 {
		t.Error("the v2 vocabulary was renumbered")
	}
	in := Action{Kind: ActionMigrateData, Reason: ReasonEraChange, Method: MethodVolume, Rows: []TableRows{{"workers", 3}, {"users", 2}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Action
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Rows) != 2 || out.Rows[1] != (TableRows{"users", 2}) || out.Method != MethodVolume {
		t.Errorf("round trip changed the migration action: %s -> %+v", b, out)
	}
	for _, c := range []RefusalCode{RefuseDataMigrationBlocked, RefuseFailedDataMigration} {
		var back RefusalCode
		text, err := c.MarshalText()
		if err != nil || back.UnmarshalText(text) != nil || back != c {
			t.Errorf("refusal %d does not round-trip through %q (%v)", int(c), text, err)
		}
	}
}
