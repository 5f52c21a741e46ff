package catalog

import (
	"reflect"
	"sort"
	"testing"
)

func TestProbeColumnsAtRevision(t *testing.T) {
	tests := []struct {
		rev    string
		table  string
		column string // "" asks about the table
		want   bool
	}{
		{"1dd9fa5b38ff", "model_instances", "gpu_index", true},
		{"1dd9fa5b38ff", "system_loads", "memory", true},
		{"1dd9fa5b38ff", "alembic_version", "", false}, // Alembic's own table is no part of a probe
		{"8277680cfcb7", "models", "embedding_only", true},
		{"6dcb3a50da19", "system_loads", "ram", true},
		{"6dcb3a50da19", "system_loads", "vram", true},
		{"6dcb3a50da19", "system_loads", "memory", false},
		{"6dcb3a50da19", "system_loads", "gpu_memory", false},
		{"6dcb3a50da19", "model_instances", "gpu_index", false},
		{"6dcb3a50da19", "model_instances", "gpu_indexes", true},
		{"e6bf9e067296", "model_instances", "resolved_path", false},
		{"e6bf9e067296", "model_files", "", false},
		{"e6bf9e067296", "models", "env", false},
		{"c45e397531d1", "model_instances", "resolved_path", true},
		{"c45e397531d1", "model_instances", "restart_count", true},
		{"c45e397531d1", "model_instances", "last_restart_time", true},
		{"c45e397531d1", "models", "env", true},
		{"c45e397531d1", "model_files", "resolved_paths", true},
		{"c45e397531d1", "modelinstancemodelfilelink", "model_file_id", true},
		{"d19176de3b74", "users", "source", true},
		{"924c9a0b4c13", "clusters", "registration_token", true},
		{"nrxtab43e8j8", "models", "embedding_only", false},
		{"nrxtab43e8j8", "models", "ollama_library_model_name", false},
		{"nrxtab43e8j8", "model_instances", "ollama_library_model_name", false},
		{"nrxtab43e8j8", "model_files", "ollama_library_model_name", false},
		{"nrxtab43e8j8", "inference_backends", "backend_name", true},
		{"53667f33f000", "usermodelroutelink", "", true},
		{"53667f33f000", "model_route_targets", "provider_model_name", true},
		{"8bf38a6bb3b5", "model_usage_details", "completed", true},
		{"8bf38a6bb3b5", "model_usage_details_archive", "completed", true},
		{"8bf38a6bb3b5", "model_route_targets", "provider_model_name", false},
		{"8bf38a6bb3b5", "model_route_targets", "overridden_model_name", true},
		{"8bf38a6bb3b5", "model_routes", "created_by_model", false},
		{"7c5e3f9a2d18", "users", "", false},
		{"7c5e3f9a2d18", "principals", "kind", true},
		{"7c5e3f9a2d18", "principals", "source", true},    // carried over by the table rename
		{"7c5e3f9a2d18", "principals", "is_active", true}, // carried over by the table rename
		{"7c5e3f9a2d18", "principals", "username", false},
		{"7c5e3f9a2d18", "principals", "hashed_password", false},
		{"7c5e3f9a2d18", "usermodelroutelink", "", false},
		{"7c5e3f9a2d18", "workers", "owner_principal_id", true},
		{"c4d7e8f9a0b1", "metered_usage", "consumer_principal_kind", true},
		{"c4d7e8f9a0b1", "gpu_instance_types", "", false},
		{"367a3982fcde", "gpu_instance_types", "", true},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.rev+"/"+tt.table+"."+tt.column, func(t *testing.T) {
			r, ok := c.Revision(tt.rev)
			if !ok {
				t.Fatalf("revision %s not found", tt.rev)
			}
			if got := r.Probe().Has(tt.table, tt.column); got != tt.want {
				t.Errorf("Has(%s, %s) = %v, want %v", tt.table, tt.column, got, tt.want)
			}
		})
	}
}

// Every probe's column lists are sorted and free of duplicates, and a
// database shaped exactly like a probe passes it.
func TestEveryProbeIsSortedAndSelfConsistent(t *testing.T) {
	c := Default()
	all, _ := c.Crossed("", c.Head().ID)
	for _, r := range all {
		p := r.Probe()
		if len(p.Tables) == 0 {
			t.Errorf("%s: empty probe", r.ID)
		}
		for table, cols := range p.Tables {
			if !sort.StringsAreSorted(cols) {
				t.Errorf("%s: %s columns not sorted: %q", r.ID, table, cols)
			}
			for i := 1; i < len(cols); i++ {
				if cols[i] == cols[i-1] {
					t.Errorf("%s: %s.%s listed twice", r.ID, table, cols[i])
				}
			}
		}
		if missing := p.Check(p.Tables); len(missing) != 0 {
			t.Errorf("%s: probe fails against itself: %v", r.ID, missing)
		}
	}
}

// The schema of a v0.5.1 database stamped c45e397531d1 by a February 2025
// main image (#1900): models.env exists, the rest of the revision does not.
func TestProbeDetectsIssue1900(t *testing.T) {
	c := Default()
	before, _ := c.Revision("e6bf9e067296")
	after, _ := c.Revision("c45e397531d1")
	have := copyTables(before.Probe().Tables)
	have["models"] = append(have["models"], "env")

	got := after.Probe().Check(have)
	want := []Missing{
		{Table: "model_files"},
		{Table: "model_instances", Column: "last_restart_time"},
		{Table: "model_instances", Column: "resolved_path"},
		{Table: "model_instances", Column: "restart_count"},
		{Table: "modelinstancemodelfilelink"},
		{Table: "models", Column: "restart_on_error"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Check = %v, want %v", got, want)
	}
}

// A database created by v2.2.0rc1–rc3 and upgraded by stamp only lacks the
// completed columns (#5774): the probe of every later head must say so.
func TestProbeDetectsIssue5774(t *testing.T) {
	c := Default()
	for _, head := range []string{"8bf38a6bb3b5", "b2c3d4e5f6a7", "c4d7e8f9a0b1", "367a3982fcde"} {
		r, _ := c.Revision(head)
		have := copyTables(r.Probe().Tables)
		for _, table := range []string{"model_usage_details", "model_usage_details_archive"} {
			have[table] = without(have[table], "completed")
		}
		got := r.Probe().Check(have)
		want := []Missing{
			{Table: "model_usage_details", Column: "completed"},
			{Table: "model_usage_details_archive", Column: "completed"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Check = %v, want %v", head, got, want)
		}
	}
}

func TestProbeCheck(t *testing.T) {
	p := Probe{Tables: map[string][]string{
		"models":          {"env", "id", "name"},
		"model_files":     {"id", "size"},
		"model_instances": {"id", "resolved_path", "restart_count"},
	}}
	tests := []struct {
		name string
		have map[string][]string
		want []Missing
	}{
		{
			name: "exact match",
			have: map[string][]string{"models": {"id", "name", "env"}, "model_files": {"size", "id"}, "model_instances": {"restart_count", "resolved_path", "id"}},
			want: nil,
		},
		{
			name: "extra tables and columns are allowed",
			have: map[string][]string{"models": {"id", "name", "env", "meta"}, "model_files": {"id", "size"}, "model_instances": {"id", "resolved_path", "restart_count"}, "gpu_devices_view": {"id"}},
			want: nil,
		},
		{
			name: "missing table reported once",
			have: map[string][]string{"models": {"id", "name", "env"}, "model_instances": {"id", "resolved_path", "restart_count"}},
			want: []Missing{{Table: "model_files"}},
		},
		{
			name: "missing columns sorted",
			have: map[string][]string{"models": {"id"}, "model_files": {"id", "size"}, "model_instances": {"id"}},
			want: []Missing{
				{Table: "model_instances", Column: "resolved_path"},
				{Table: "model_instances", Column: "restart_count"},
				{Table: "models", Column: "env"},
				{Table: "models", Column: "name"},
			},
		},
		{
			name: "column names compare case-insensitively",
			have: map[string][]string{"models": {"ID", "Name", "ENV"}, "model_files": {"id", "size"}, "model_instances": {"id", "Resolved_Path", "restart_count"}},
			want: nil,
		},
		{
			name: "empty database",
			have: map[string][]string{},
			want: []Missing{{Table: "model_files"}, {Table: "model_instances"}, {Table: "models"}},
		},
		{
			name: "table present without columns",
			have: map[string][]string{"models": nil, "model_files": {"id", "size"}, "model_instances": {"id", "resolved_path", "restart_count"}},
			want: []Missing{{Table: "models", Column: "env"}, {Table: "models", Column: "id"}, {Table: "models", Column: "name"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Check(tt.have); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Check = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProbeHas(t *testing.T) {
	p := Probe{Tables: map[string][]string{"models": {"env"}, "usermodelroutelink": {}}}
	tests := []struct {
		table, column string
		want          bool
	}{
		{"models", "", true},
		{"models", "env", true},
		{"models", "ENV", false}, // Has matches catalog names exactly
		{"models", "name", false},
		{"usermodelroutelink", "", true},
		{"workers", "", false},
		{"workers", "id", false},
	}
	for _, tt := range tests {
		if got := p.Has(tt.table, tt.column); got != tt.want {
			t.Errorf("Has(%q, %q) = %v, want %v", tt.table, tt.column, got, tt.want)
		}
	}
}

func TestMissingString(t *testing.T) {
	if got := (Missing{Table: "model_files"}).String(); got != "table model_files" {
		t.Errorf("String() = %q", got)
	}
	if got := (Missing{Table: "model_instances", Column: "resolved_path"}).String(); got != "model_instances.resolved_path" {
		t.Errorf("String() = %q", got)
	}
}

func TestProbeApply(t *testing.T) {
	base := Probe{Tables: map[string][]string{
		"users":        {"id", "username"},
		"system_loads": {"id", "memory"},
		"old_link":     {},
	}}
	r := Revision{
		Renames: []Rename{
			{Table: "users", To: "principals"},
			{Table: "system_loads", Column: "memory", To: "ram"},
		},
		Adds:       map[string][]string{"principals": {"kind"}, "new_table": {"id", "b", "a"}},
		Drops:      map[string][]string{"principals": {"username"}, "absent": {"x"}},
		DropTables: []string{"old_link"},
	}
	got := base.apply(r)
	want := map[string][]string{
		"principals":   {"id", "kind"},
		"system_loads": {"id", "ram"},
		"new_table":    {"a", "b", "id"},
	}
	if !reflect.DeepEqual(got.Tables, want) {
		t.Errorf("apply = %v, want %v", got.Tables, want)
	}
	// apply works on a copy.
	if !reflect.DeepEqual(base.Tables["users"], []string{"id", "username"}) || len(base.Tables) != 3 {
		t.Errorf("apply changed its input: %v", base.Tables)
	}
}

func copyTables(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func without(xs []string, drop string) []string {
	var out []string
	for _, x := range xs {
		if x != drop {
			out = append(out, x)
		}
	}
	return out
}

func TestTraces(t *testing.T) {
	cat := Default()
	at := func(rev string) map[string][]string {
		r, ok := cat.Revision(rev)
		if !ok {
			t.Fatalf("no revision %s", rev)
		}
		out := map[string][]string{}
		for table, cols := range r.Probe().Tables {
			out[table] = append([]string(nil), cols...)
		}
		return out
	}
	if got := cat.Traces("004c73a5c09e", at("004c73a5c09e")); len(got) != 0 {
		t.Errorf("a clean database has no traces, got %v", got)
	}
	half := at("004c73a5c09e")
	half["models"] = append(half["models"], "CATEGORIES")
	got := cat.Traces("004c73a5c09e", half)
	if len(got) != 1 || got[0].String() != "models.categories" {
		t.Errorf("traces %v, want models.categories (matched case-insensitively)", got)
	}
	withTable := at("e6bf9e067296")
	withTable["model_files"] = []string{"id"}
	if got := cat.Traces("e6bf9e067296", withTable); len(got) == 0 || got[0].String() != "table model_files" {
		t.Errorf("traces %v, want table model_files first", got)
	}
	if got := cat.Traces(cat.Head().ID, at(cat.Head().ID)); got != nil {
		t.Errorf("the head has no next revision, got %v", got)
	}
	if got := cat.Traces("nope", nil); got != nil {
		t.Errorf("an unknown revision has no traces, got %v", got)
	}
}
