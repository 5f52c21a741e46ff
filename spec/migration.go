package spec

import (
	"sort"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/config"
)

// Data migration switches of GPUStack v2 (facts §2.2): v2.0.1 and later
// read GPUSTACK_DATA_MIGRATION=true; v2.0.0 read the directory to migrate
// from GPUSTACK_MIGRATION_DATA_DIR.
const (
	EnvDataMigration    = "GPUSTACK_DATA_MIGRATION"
	EnvMigrationDataDir = "GPUSTACK_MIGRATION_DATA_DIR"
)

// WithDataMigration returns c with the switch that makes a v2 release copy
// the v0.x SQLite database of its data directory into PostgreSQL at its
// first start. legacySwitch selects v2.0.0's GPUSTACK_MIGRATION_DATA_DIR.
// The environment-keys label and the configuration hash follow, so a
// container left with the switch by an interrupted apply differs from the
// desired one and is replaced by the next plan.
func WithDataMigration(c Container, legacySwitch bool) Container {
	v := EnvVar{Name: EnvDataMigration, Value: config.Value{S: "true"}}
	if legacySwitch {
		v = EnvVar{Name: EnvMigrationDataDir, Value: config.Value{S: DataDir}}
	}
	out := c
	out.Env = append([]EnvVar(nil), c.Env...)
	out.Env = append(out.Env, v)
	sort.Slice(out.Env, func(i, j int) bool { return out.Env[i].Name < out.Env[j].Name })
	names := make([]string, len(out.Env))
	for i, e := range out.Env {
		names[i] = e.Name
	}
	out.Labels = make(map[string]string, len(c.Labels))
	for k, val := range c.Labels {
		out.Labels[k] = val
	}
	out.Labels[LabelEnvKeys] = strings.Join(names, ",")
	out.Labels[LabelConfigHash] = out.hash()
	return out
}
