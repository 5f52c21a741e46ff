package emulator

import (
	"context"
	"database/sql"
	"errors"
)

// Revision is one step of the emulator's Alembic chain.
type Revision struct {
	ID      string
	Down    string // "" for the first revision
	Message string
	Blocks  []Block
	// Before runs inside the revision's transaction ahead of its statements.
	// It emulates data-dependent failures of the real scripts.
	Before func(ctx context.Context, tx *sql.Tx, rel Release) error
	// CacheMove marks the revision whose real script rearranges the model
	// cache (c45e397531d1).
	CacheMove bool
}

// Block is a group of statements run together, optionally skipped as a whole
// by a guard evaluated once before the block (the real c45e397531d1 guards a
// group of columns with one column_exists check).
type Block struct {
	UnlessColumn [2]string // {table, column}: skip if that column exists
	UnlessTable  string    // skip if that table exists
	Statements   []string
}

// Statements counts the statements of a revision, guards ignored.
func (r *Revision) statementCount() int {
	n := 0
	for _, b := range r.Blocks {
		n += len(b.Statements)
	}
	return n
}

const stamps = "created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL"

// usersTable is shared by 1dd9fa5b38ff and the SQLite-only recreation of
// users with AUTOINCREMENT in c45e397531d1.
func usersTable(name string, autoincrement bool) string {
	pk := "id INTEGER NOT NULL PRIMARY KEY"
	if autoincrement {
		pk += " AUTOINCREMENT"
	}
	return "CREATE TABLE " + name + " (" + pk + ", " + stamps + `,
	username VARCHAR NOT NULL UNIQUE,
	is_admin BOOLEAN NOT NULL,
	full_name VARCHAR,
	require_password_change BOOLEAN NOT NULL,
	hashed_password VARCHAR NOT NULL)`
}

const usersColumns = "id, created_at, updated_at, username, is_admin, full_name, require_password_change, hashed_password"

func apiKeysTable(name string, withFK bool) string {
	fk := ""
	if withFK {
		fk = ",\n\tCONSTRAINT fk_api_keys_user_id_users FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE"
	}
	return "CREATE TABLE " + name + " (id INTEGER NOT NULL PRIMARY KEY, " + stamps + `,
	name VARCHAR NOT NULL,
	description VARCHAR,
	access_key VARCHAR NOT NULL,
	hashed_secret_key VARCHAR NOT NULL UNIQUE,
	user_id INTEGER NOT NULL,
	expires_at DATETIME,
	CONSTRAINT uix_name_user_id UNIQUE (name, user_id)` + fk + ")"
}

const apiKeysColumns = "id, created_at, updated_at, name, description, access_key, hashed_secret_key, user_id, expires_at"

func modelUsagesTable(name string, cascade bool) string {
	onDelete := ""
	if cascade {
		onDelete = " ON DELETE CASCADE"
	}
	return "CREATE TABLE " + name + " (id INTEGER NOT NULL PRIMARY KEY, " + stamps + `,
	user_id INTEGER NOT NULL,
	model_id INTEGER NOT NULL,
	date DATE NOT NULL,
	prompt_token_count INTEGER NOT NULL,
	completion_token_count INTEGER NOT NULL,
	request_count INTEGER NOT NULL,
	operation VARCHAR(19) NOT NULL,
	CONSTRAINT fk_model_usages_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)` + onDelete + `,
	CONSTRAINT fk_model_usages_model_id_models FOREIGN KEY(model_id) REFERENCES models (id)` + onDelete + ")"
}

const modelUsagesColumns = "id, created_at, updated_at, user_id, model_id, date, prompt_token_count, completion_token_count, request_count, operation"

// recreate emulates Alembic's batch mode on SQLite: copy into a temporary
// table, drop the old one, rename. Indexes must be re-created by the caller.
func recreate(table, create, columns string) []string {
	tmp := "_alembic_tmp_" + table
	return []string{
		create,
		"INSERT INTO " + tmp + " (" + columns + ") SELECT " + columns + " FROM " + table,
		"DROP TABLE " + table,
		"ALTER TABLE " + tmp + " RENAME TO " + table,
	}
}

func stmts(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// errNoneTypeGet is the cause of #2635: cbbc03c88985 as shipped in v0.7.0
// dereferenced model_instances.distributed_servers holding JSON null.
var errNoneTypeGet = errors.New("'NoneType' object has no attribute 'get'")

// chain is the SQLite-era revision chain, oldest first, as the emulator
// implements it. Statements before c45e397531d1 are deliberately unguarded
// so that a half-applied revision fails on re-run like the real one.
var chain = []*Revision{
	{ID: "1dd9fa5b38ff", Message: "initialize tables", Blocks: []Block{{Statements: []string{
		apiKeysTable("api_keys", false),
		"CREATE UNIQUE INDEX ix_api_keys_access_key ON api_keys (access_key)",
		"CREATE TABLE models (id INTEGER NOT NULL PRIMARY KEY, " + stamps + `,
	name VARCHAR NOT NULL UNIQUE,
	description VARCHAR,
	source VARCHAR(14) NOT NULL,
	huggingface_repo_id VARCHAR,
	huggingface_filename VARCHAR,
	ollama_library_model_name VARCHAR,
	replicas INTEGER NOT NULL,
	ready_replicas INTEGER NOT NULL)`,
		"CREATE TABLE system_loads (id INTEGER NOT NULL PRIMARY KEY, " + stamps + `,
	timestamp INTEGER NOT NULL,
	cpu FLOAT,
	memory FLOAT,
	gpu FLOAT,
	gpu_memory FLOAT)`,
		usersTable("users", false),
		"CREATE TABLE workers (id INTEGER NOT NULL PRIMARY KEY, " + stamps + `,
	name VARCHAR NOT NULL UNIQUE,
	hostname VARCHAR NOT NULL,
	ip VARCHAR NOT NULL,
	labels JSON,
	system_reserved JSON,
	state VARCHAR(11) NOT NULL,
	state_message VARCHAR,
	status JSON)`,
		"CREATE TABLE model_instances (id INTEGER NOT NULL PRIMARY KEY, " + stamps + `,
	source VARCHAR(14) NOT NULL,
	huggingface_repo_id VARCHAR,
	huggingface_filename VARCHAR,
	ollama_library_model_name VARCHAR,
	name VARCHAR NOT NULL UNIQUE,
	worker_id INTEGER,
	worker_name VARCHAR,
	worker_ip VARCHAR,
	pid INTEGER,
	port INTEGER,
	download_progress FLOAT,
	state VARCHAR(12) NOT NULL,
	state_message VARCHAR,
	computed_resource_claim JSON,
	gpu_index INTEGER,
	model_id INTEGER NOT NULL,
	model_name VARCHAR NOT NULL,
	CONSTRAINT fk_model_instances_model_id_models FOREIGN KEY(model_id) REFERENCES models (id))`,
		modelUsagesTable("model_usages", false),
	}}}},
	{ID: "8277680cfcb7", Down: "1dd9fa5b38ff", Message: "add model embedding only", Blocks: []Block{{Statements: []string{
		"ALTER TABLE models ADD COLUMN embedding_only BOOLEAN NOT NULL DEFAULT 0",
	}}}},
	{ID: "6dcb3a50da19", Down: "8277680cfcb7", Message: "update model, instance, and system load for distributed scheduling", Blocks: []Block{{Statements: []string{
		"ALTER TABLE system_loads RENAME COLUMN memory TO ram",
		"ALTER TABLE system_loads RENAME COLUMN gpu_memory TO vram",
		"ALTER TABLE models ADD COLUMN placement_strategy VARCHAR(7) NOT NULL DEFAULT 'SPREAD'",
		"ALTER TABLE models ADD COLUMN cpu_offloading BOOLEAN NOT NULL DEFAULT 1",
		"ALTER TABLE models ADD COLUMN distributed_inference_across_workers BOOLEAN NOT NULL DEFAULT 1",
		"ALTER TABLE models ADD COLUMN worker_selector JSON",
		"ALTER TABLE models ADD COLUMN gpu_selector JSON",
		"DELETE FROM model_instances",
		"ALTER TABLE model_instances ADD COLUMN distributed_servers JSON",
		"ALTER TABLE model_instances ADD COLUMN gpu_indexes JSON",
		"ALTER TABLE model_instances DROP COLUMN gpu_index",
	}}}},
	{ID: "f29521415cbd", Down: "6dcb3a50da19", Message: "update model, instance to support model scope source", Blocks: []Block{{Statements: []string{
		"ALTER TABLE model_instances ADD COLUMN model_scope_model_id VARCHAR",
		"ALTER TABLE model_instances ADD COLUMN model_scope_file_path VARCHAR",
		"ALTER TABLE models ADD COLUMN distributable BOOLEAN NOT NULL DEFAULT 0",
		"ALTER TABLE models ADD COLUMN model_scope_model_id VARCHAR",
		"ALTER TABLE models ADD COLUMN model_scope_file_path VARCHAR",
		"ALTER TABLE models ADD COLUMN backend VARCHAR",
		"ALTER TABLE models ADD COLUMN backend_parameters JSON",
	}}}},
	{ID: "0f7dde8b3c4b", Down: "f29521415cbd", Message: "add reranker", Blocks: []Block{{Statements: []string{
		"ALTER TABLE models ADD COLUMN reranker BOOLEAN NOT NULL DEFAULT 0",
	}}}},
	{ID: "004c73a5c09e", Down: "0f7dde8b3c4b", Message: "add local_path", Blocks: []Block{{Statements: stmts(
		[]string{
			"ALTER TABLE model_instances ADD COLUMN local_path VARCHAR",
			"ALTER TABLE models ADD COLUMN backend_version VARCHAR",
			"ALTER TABLE models ADD COLUMN local_path VARCHAR",
			"ALTER TABLE models ADD COLUMN image_only BOOLEAN NOT NULL DEFAULT 0",
			"ALTER TABLE models ADD COLUMN speech_to_text BOOLEAN NOT NULL DEFAULT 0",
			"ALTER TABLE models ADD COLUMN text_to_speech BOOLEAN NOT NULL DEFAULT 0",
		},
		// operation becomes a wider enum and the FKs cascade: batch recreate.
		recreate("model_usages", modelUsagesTable("_alembic_tmp_model_usages", true), modelUsagesColumns),
	)}}},
	{ID: "e6bf9e067296", Down: "004c73a5c09e", Message: "add model categories", Blocks: []Block{{Statements: []string{
		"ALTER TABLE models ADD COLUMN categories JSON",
		"ALTER TABLE models ADD COLUMN meta JSON",
		"ALTER TABLE workers ADD COLUMN port INTEGER NOT NULL DEFAULT 10150",
		"ALTER TABLE workers ADD COLUMN unreachable BOOLEAN NOT NULL DEFAULT 0",
		"ALTER TABLE workers ADD COLUMN heartbeat_time DATETIME",
		`UPDATE models SET categories = CASE
	WHEN embedding_only THEN '["embedding"]'
	WHEN reranker THEN '["reranker"]'
	WHEN image_only THEN '["image"]'
	WHEN speech_to_text THEN '["speech_to_text"]'
	WHEN text_to_speech THEN '["text_to_speech"]'
	ELSE '["llm"]' END
WHERE categories IS NULL`,
		`UPDATE workers SET status = json_set(status, '$.gpu_devices', (
	SELECT json_group_array(json_set(value,
		'$.labels', json(coalesce(json_extract(value, '$.labels'), '{}')),
		'$.type', coalesce(json_extract(value, '$.type'), 'cuda')))
	FROM json_each(status, '$.gpu_devices')))
WHERE json_valid(status) AND json_type(status, '$.gpu_devices') = 'array'`,
	}}}},
	{ID: "c45e397531d1", Down: "e6bf9e067296", Message: "GPUStack v0.6.0", CacheMove: true, Blocks: c45Blocks()},
	{ID: "cbbc03c88985", Down: "c45e397531d1", Message: "GPUStack v0.7.0", Before: cbbcNullGuard, Blocks: []Block{{Statements: []string{
		"ALTER TABLE workers ADD COLUMN worker_uuid VARCHAR(255) NOT NULL DEFAULT ''",
		"CREATE INDEX ix_workers_worker_uuid ON workers (worker_uuid)",
		"ALTER TABLE model_instances ADD COLUMN ports JSON",
		"ALTER TABLE model_instances ADD COLUMN gpu_addresses JSON",
	}}}},
	{ID: "d19176de3b74", Down: "cbbc03c88985", Message: "GPUStack v0.7.1", Blocks: []Block{{Statements: []string{
		"ALTER TABLE users ADD COLUMN source VARCHAR(255) NOT NULL DEFAULT 'Local'",
		"ALTER TABLE users ADD COLUMN avatar_url TEXT",
	}}}},
}

func c45Blocks() []Block {
	return []Block{
		{UnlessColumn: [2]string{"models", "env"}, Statements: []string{
			"ALTER TABLE models ADD COLUMN env JSON",
			"ALTER TABLE models ADD COLUMN restart_on_error BOOLEAN",
		}},
		{UnlessColumn: [2]string{"model_instances", "resolved_path"}, Statements: []string{
			"ALTER TABLE model_instances ADD COLUMN resolved_path VARCHAR",
			"ALTER TABLE model_instances ADD COLUMN restart_count INTEGER",
			"ALTER TABLE model_instances ADD COLUMN last_restart_time DATETIME",
		}},
		{UnlessTable: "model_files", Statements: []string{
			"CREATE TABLE model_files (id INTEGER NOT NULL PRIMARY KEY, " + stamps + `,
	source VARCHAR(14) NOT NULL,
	huggingface_repo_id VARCHAR,
	huggingface_filename VARCHAR,
	ollama_library_model_name VARCHAR,
	model_scope_model_id VARCHAR,
	model_scope_file_path VARCHAR,
	local_path VARCHAR,
	source_index VARCHAR,
	size BIGINT,
	download_progress FLOAT,
	resolved_paths JSON,
	state VARCHAR(11) NOT NULL,
	state_message VARCHAR,
	cleanup_on_delete BOOLEAN,
	local_dir VARCHAR,
	worker_id INTEGER)`,
		}},
		{UnlessTable: "modelinstancemodelfilelink", Statements: []string{
			`CREATE TABLE modelinstancemodelfilelink (
	model_instance_id INTEGER NOT NULL,
	model_file_id INTEGER NOT NULL,
	PRIMARY KEY (model_instance_id, model_file_id),
	CONSTRAINT fk_model_instance_model_file_link_model_files FOREIGN KEY(model_file_id) REFERENCES model_files (id) ON DELETE RESTRICT,
	CONSTRAINT fk_model_instance_model_file_link_model_instances FOREIGN KEY(model_instance_id) REFERENCES model_instances (id) ON DELETE CASCADE)`,
		}},
		{Statements: stmts(
			recreate("users", usersTable("_alembic_tmp_users", true), usersColumns),
			[]string{"DELETE FROM api_keys WHERE user_id NOT IN (SELECT id FROM users)"},
			recreate("api_keys", apiKeysTable("_alembic_tmp_api_keys", true), apiKeysColumns),
			[]string{"CREATE UNIQUE INDEX ix_api_keys_access_key ON api_keys (access_key)"},
		)},
	}
}

// devC45 is c45e397531d1 as a 2025-03 `main` image carried it: only
// models.env (facts §3.4, commit 4697f394), no cache move.
var devC45 = &Revision{ID: "c45e397531d1", Down: "e6bf9e067296", Message: "add env", Blocks: []Block{{
	UnlessColumn: [2]string{"models", "env"},
	Statements:   []string{"ALTER TABLE models ADD COLUMN env JSON"},
}}}

func cbbcNullGuard(ctx context.Context, tx *sql.Tx, rel Release) error {
	if rel.atLeast(0, 7, 1) {
		return nil
	}
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM model_instances WHERE distributed_servers = 'null'").Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return errNoneTypeGet
	}
	return nil
}

// revisionIndex returns the position of id in chain, or -1.
func revisionIndex(id string) int {
	for i, r := range chain {
		if r.ID == id {
			return i
		}
	}
	return -1
}
