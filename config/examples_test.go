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
		"basic":   {"v0.5.1", catalog.EngineSQLite},
		"v2":      {"v2.2.3", catalog.EngineEmbeddedPostgres},
		"cluster": {"v2.2.3", catalog.EngineEmbeddedPostgres},
	}
	seen := 0
	for _, dir := range dirs {
		name := filepath.Base(dir)
		w, ok := want[name]
		if !ok {
			continue
		}
		seen++
		var opts Options
		if name == "cluster" {
			opts.Environ = []string{"GPUSTACK_DEPLOY_VAR_api_key=gpustack_example"}
		}
		d, _, diags := Load([]string{dir}, opts)
		if diags.HasErrors() || len(diags) > 0 {
			t.Errorf("examples/%s: %v", name, diags)
			continue
		}
		var servers []Deployment
		for _, x := range d.Deployments {
			if x.IsWorker() {
				if x.Version != w.version || !x.VersionFollowsServer || x.ServerURL == "" {
					t.Errorf("examples/%s: worker %s runs %s (follows its server: %t) and registers at %q", name, x.Name, x.Version, x.VersionFollowsServer, x.ServerURL)
				}
				continue
			}
			servers = append(servers, x)
		}
		if len(servers) != 1 {
			t.Fatalf("examples/%s: %d servers, want 1", name, len(servers))
		}
		if name == "cluster" && len(d.Deployments) != 3 {
			t.Errorf("examples/cluster: %d deployments, want a server and 2 workers", len(d.Deployments))
		}
		dep := servers[0]
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
