package catalog

// JumpRevision is the last head of the SQLite era (v0.7.1). The v0.x → v2
// data migration (`gpustack migrate`, run by v2 at start with
// GPUSTACK_DATA_MIGRATION) upgrades a copy of the SQLite database and the
// new PostgreSQL database to it, copies the rows, and only then does v2
// upgrade PostgreSQL to its own head (facts §3.1).
const JumpRevision = "d19176de3b74"

// migratedTables are the tables that migration copies, in its order.
var migratedTables = []string{
	"system_loads", "workers", "users", "api_keys", "model_files", "models",
	"model_instances", "modelinstancemodelfilelink", "model_usages",
}

// MigratedTables returns the tables the v0.x → v2 data migration copies
// from SQLite into PostgreSQL, in the order it copies them. Every other
// table of a v0.x database is left behind.
func MigratedTables() []string { return append([]string(nil), migratedTables...) }
