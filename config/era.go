package config

import (
	"fmt"

	"github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// Flags and environment variables whose meaning changed with GPUStack v2
// (facts §2.2), checked against the release a deployment targets.

// Environment variables gpustack-deploy sets itself for the one start that
// moves v0.x data into PostgreSQL (spec.EnvDataMigration and
// spec.EnvMigrationDataDir; spec imports config, so the names are repeated).
const (
	envDataMigration    = "GPUSTACK_DATA_MIGRATION"
	envMigrationDataDir = "GPUSTACK_MIGRATION_DATA_DIR"
	envDatabaseURL      = "GPUSTACK_DATABASE_URL"
)

var (
	v040 = version.Must(version.NewVersion("0.4.0"))
	v061 = version.Must(version.NewVersion("0.6.1"))
	v201 = version.Must(version.NewVersion("2.0.1"))
)

// releaseTarget is what a deployment's version resolves to: the release
// when the catalog knows it, and the era when the tag tells it.
type releaseTarget struct {
	rel   *catalog.Release
	era   catalog.Engine
	known bool // the era could be told
}

// atLeast reports whether the target is a known release at or after v,
// release candidates counting as their final release.
func (t releaseTarget) atLeast(v *version.Version) bool {
	return t.rel != nil && t.rel.Version().Core().GreaterThanOrEqual(v)
}

// before reports whether the target is a known release older than v.
func (t releaseTarget) before(v *version.Version) bool {
	return t.rel != nil && t.rel.Version().Core().LessThan(v)
}

func (t releaseTarget) sqlite() bool { return t.known && t.era == catalog.EngineSQLite }

func (t releaseTarget) name() string {
	if t.rel != nil {
		return "GPUStack " + t.rel.Tag
	}
	return "this image"
}

// eraSetting is one flag and the environment variable GPUStack reads in its place.
type eraSetting struct {
	flag, env string
}

var (
	disableWorker = eraSetting{"--disable-worker", "GPUSTACK_DISABLE_WORKER"}
	enableWorker  = eraSetting{"--enable-worker", "GPUSTACK_ENABLE_WORKER"}
	databasePort  = eraSetting{"--database-port", "GPUSTACK_DATABASE_PORT"}
)

// checkEraSetting reports a flag (or its variable, named by what) that
// the target release does not accept or has deprecated. It reports
// whether it said anything.
func (c *checker) checkEraSetting(s eraSetting, what string, r hcl.Range, t releaseTarget) bool {
	switch {
	case s == disableWorker && t.atLeast(v201):
		c.eval.add(&hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "Deprecated worker switch",
			Detail: fmt.Sprintf("%s deprecates %s: since v2.0.1 a new installation has no embedded worker unless %s (%s) is given, "+
				"while a data directory from before v2.0.1 (one migrated from v0.x included) keeps its embedded worker for compatibility. "+
				"On a new installation remove %s: a server without a worker needs nothing; workers join with --server-url and --token.",
				t.name(), what, enableWorker.flag, enableWorker.env, what),
			Subject: r.Ptr(),
		})
		return true
	case s == enableWorker && t.sqlite():
		c.errorAt(r, "Worker switch not in this release",
			"%s does not exist in v0.x: %s runs an embedded worker unless --disable-worker is given. Remove %s, or target a v2 release from v2.0.1 on.", what, t.name(), what)
		return true
	case s == enableWorker && t.before(v201):
		c.errorAt(r, "Worker switch not in this release",
			"%s came in GPUStack v2.0.1; %s does not accept it. Remove %s, or write version = %q or later.", what, t.name(), what, "v2.0.1")
		return true
	case s == databasePort && t.sqlite():
		c.errorAt(r, "Database port not in this release",
			"%s sets the port of v2's embedded PostgreSQL; %s keeps its data in SQLite and has no such setting. Remove %s.", what, t.name(), what)
		return true
	}
	return false
}

// checkMigrationEnv rejects the data-migration switches: gpustack-deploy
// sets them for exactly one start, in a planned migrate-data step.
func (c *checker) checkMigrationEnv(name string, r hcl.Range) bool {
	if name != envDataMigration && name != envMigrationDataDir {
		return false
	}
	c.errorAt(r, "Variable set by gpustack-deploy",
		"env must not set %s: gpustack-deploy sets it itself for the one start that copies v0.x SQLite data into v2's PostgreSQL "+
			"(a planned migrate-data step, after a backup of the whole data volume) and removes it afterwards. "+
			"Left set, every start would try the copy again (#3070). Remove %s and run plan: the migration is planned when the data volume holds v0.x data.",
		name, name)
	return true
}

// checkDatabaseURLSetting points --database-url and GPUSTACK_DATABASE_URL
// at the database_url attribute.
func (c *checker) checkDatabaseURLSetting(what string, r hcl.Range) {
	c.errorAt(r, "Database URL outside database_url",
		"%s must not be set in args or env. Write the URL in the database_url attribute, from a sensitive variable: "+
			"variable \"database_url\" { sensitive = true } and database_url = var.database_url. "+
			"gpustack-deploy passes it as %s, checks its scheme against the release and plans the backups of an external database.",
		what, envDatabaseURL)
}
