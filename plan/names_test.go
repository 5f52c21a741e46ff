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
