package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// fullSavedPlan is a saved plan that uses every part of the format: each
// action kind, backup method, refusal and a warning.
func fullSavedPlan() savedPlan {
	d := plan.Deployment{
		Name: "prod", Host: "default",
		Current: plan.State{Version: "v0.5.1-cpu", Release: "v0.5.1", Image: "gpustack/gpustack:v0.5.1-cpu", Container: "gpustack-prod (running)",
			Health: "healthy", Revision: "e6bf9e067296", Engine: catalog.EngineSQLite, Database: "read"},
		Target: plan.State{Version: "v0.6.0-cpu", Release: "v0.6.0", Image: "gpustack/gpustack:v0.6.0-cpu", Container: "gpustack-prod",
			Revision: "c45e397531d1", Engine: catalog.EngineSQLite},
		Tag:      catalog.ClassifyTag("v0.6.0-cpu"),
		Warnings: []plan.Warning{{Summary: "revision c45e397531d1 changes the model cache", Detail: "moves Hugging Face cache dirs"}},
		Refusals: []plan.Refusal{{Code: plan.RefuseDowngrade, Summary: "s", Detail: "d", Remedy: "r", Source: "gpustack.hcl:3,20"}},
	}
	methods := []plan.BackupMethod{plan.MethodSQLite, plan.MethodPGFiles, plan.MethodPGDump, plan.MethodVolume, plan.MethodExternalDump}
	for k := plan.ActionKind(1); !strings.HasPrefix(k.String(), "action("); k++ {
		a := plan.Action{Kind: k, Reason: plan.Reason(int(k) % 26), Subject: "gpustack-prod", Detail: "args", From: "v0.5.1-cpu", To: "v0.6.0-cpu"}
		switch k {
		case plan.ActionBackupDatabase, plan.ActionSafetyCopy, plan.ActionRestoreDatabase:
			a.Method = methods[int(k)%len(methods)]
		case plan.ActionMigrate:
			a.Steps = []plan.Step{{Revision: "c45e397531d1", Message: "GPUStack v0.6.0", FirstTag: "v0.6.0rc1"}}
		case plan.ActionMigrateData:
			a.Rows = []plan.TableRows{{Table: "users", Rows: 1}, {Table: "models", Rows: 12}}
		}
		d.Actions = append(d.Actions, a)
	}
	return savedPlan{
		FormatVersion: plan.FormatVersion,
		Created:       time.Date(2026, 11, 28, 6, 17, 2, 0, time.UTC),
		Files:         []fileHash{{Path: "/srv/deploy/gpustack.hcl", SHA256: strings.Repeat("ab", 32)}},
		Replace:       []string{"prod.data"},
		Plan:          &plan.Plan{FormatVersion: plan.FormatVersion, Deployments: []plan.Deployment{d}, Observed: "sha256:0123"},
	}
}

// FuzzSavedPlan feeds arbitrary bytes to the saved-plan decoder that
// `apply FILE` uses. It must never panic; a plan it accepts re-encodes,
// and the re-encoded form decodes to a value that encodes the same way
// again (JSON's omitempty turns [] into absent, so the first decode and
// the second may differ in nil against empty, never in content).
// Everything accepted carries only names this binary knows. The
// checked-in corpus is testdata/fuzz/FuzzSavedPlan.
func FuzzSavedPlan(f *testing.F) {
	full, err := json.MarshalIndent(fullSavedPlan(), "", "  ")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Fuzz(func(t *testing.T, data []byte) {
		sp, err := decodeSavedPlan("fuzz.plan", data)
		if err != nil {
			if sp != nil {
				t.Fatalf("an error (%v) with a plan", err)
			}
			if !strings.Contains(err.Error(), "fuzz.plan") {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		if sp.Plan == nil || sp.FormatVersion != plan.FormatVersion {
			t.Fatalf("accepted a plan of format %d (plan %v)", sp.FormatVersion, sp.Plan)
		}
		for _, d := range sp.Plan.Deployments {
			for _, a := range d.Actions {
				if strings.HasPrefix(a.Kind.String(), "action(") {
					t.Fatalf("accepted an action of kind %d, which has no name", int(a.Kind))
				}
			}
			for _, r := range d.Refusals {
				if strings.HasPrefix(r.Code.String(), "refusal(") {
					t.Fatalf("accepted a refusal code %d, which has no name", int(r.Code))
				}
			}
		}
		once, err := json.Marshal(sp)
		if err != nil {
			t.Fatalf("an accepted plan does not encode: %v", err)
		}
		again, err := decodeSavedPlan("fuzz.plan", once)
		if err != nil {
			t.Fatalf("an accepted plan, encoded, is refused: %v\n%s", err, once)
		}
		twice, err := json.Marshal(again)
		if err != nil {
			t.Fatalf("the plan decoded again does not encode: %v", err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("encoding is not stable:\n%s\n%s", once, twice)
		}
		third, err := decodeSavedPlan("fuzz.plan", twice)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, third) {
			t.Fatalf("decode(encode(plan)) changed the plan:\n%#v\n%#v", again, third)
		}
	})
}

// TestSavedPlanRoundTrip: the full plan goes through the file format
// without a change.
func TestSavedPlanRoundTrip(t *testing.T) {
	want := fullSavedPlan()
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSavedPlan("full.plan", data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("round trip changed the plan:\n got %#v\nwant %#v", *got, want)
	}
}

// TestSavedPlanRefusesUnknownNames: a name this binary does not know, or
// an enum left out, is an error, never a zero value.
func TestSavedPlanRefusesUnknownNames(t *testing.T) {
	data, err := json.Marshal(fullSavedPlan())
	if err != nil {
		t.Fatal(err)
	}
	good := string(data)
	tests := []struct {
		name, old, new string
	}{
		{"unknown action", `"kind":"pull-image"`, `"kind":"pull-images"`},
		{"action kind as a number", `"kind":"pull-image"`, `"kind":1`},
		{"action kind null", `"kind":"pull-image"`, `"kind":null`},
		{"action kind missing", `"kind":"pull-image",`, ``},
		{"unknown reason", `"reason":"image-missing"`, `"reason":"no-such-reason"`},
		{"unknown refusal", `"code":"downgrade"`, `"code":"sidegrade"`},
		{"refusal code missing", `"code":"downgrade",`, ``},
		{"unknown tag class", `"class":"release"`, `"class":"stable"`},
		{"unknown backup method", `"method":"pg-files"`, `"method":"rsync"`},
		{"old format", `"format_version":1`, `"format_version":0`},
		{"no plan", `"plan":{`, `"plan":null,"x":{`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(good, tt.old) {
				t.Fatalf("the full plan has no %s", tt.old)
			}
			bad := strings.Replace(good, tt.old, tt.new, 1)
			sp, err := decodeSavedPlan("bad.plan", []byte(bad))
			if err == nil {
				t.Fatalf("accepted %s: %+v", tt.name, sp.Plan.Deployments[0].Actions[0])
			}
			if !strings.Contains(err.Error(), "bad.plan") {
				t.Errorf("the error does not name the file: %v", err)
			}
		})
	}
}
