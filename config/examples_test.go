package config

import (
	"path/filepath"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// TestExamplesLoad: every example the README points operators to is valid,
// without warnings, and says what its comments say.
func TestExamplesLoad(t *testing.T) {
	dirs, err := filepath.Glob("../examples/*")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		version string
		era     catalog.Engine
	}{
		"basic": {"v0.5.1", catalog.EngineSQLite},
		"v2":    {"v2.2.3", catalog.EngineEmbeddedPostgres},
	}
	seen := 0
	for _, dir := range dirs {
		name := filepath.Base(dir)
		w, ok := want[name]
		if !ok {
			continue
		}
		seen++
		d, _, diags := Load([]string{dir}, Options{})
		if diags.HasErrors() || len(diags) > 0 {
			t.Errorf("examples/%s: %v", name, diags)
			continue
		}
		if len(d.Deployments) != 1 {
			t.Fatalf("examples/%s: %d deployments, want 1", name, len(d.Deployments))
		}
		dep := d.Deployments[0]
		if dep.Version != w.version || dep.Era != w.era {
			t.Errorf("examples/%s: version %s (era %s), want %s (%s)", name, dep.Version, dep.Era, w.version, w.era)
		}
		if dep.Cache == nil || dep.Cache.Name == dep.Data.Name {
			t.Errorf("examples/%s: the model cache has no volume of its own", name)
		}
		if !dep.Backup.BeforeUpgrade {
			t.Errorf("examples/%s: no backup before upgrades", name)
		}
	}
	if seen != len(want) {
		t.Errorf("found %d of the %d examples", seen, len(want))
	}
}
