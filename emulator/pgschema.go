package emulator

import (
	"context"
	"database/sql"
	"fmt"
)

// The v2 Alembic chain in PostgreSQL DDL, written by hand from the fact
// sheet (§3.2), not from GPUStack's code and not from the project's
// catalog: the catalog's schema probe is tested against it.
//
// Fresh databases get pgBase, the schema of the v0.7.1 head d19176de3b74
// (revisions 1–10 in PostgreSQL types), in one step; the v2 revisions 11 …
// 32 follow one by one. Revision 33 (main only) is not emulated.

// pgRevision is one step of the v2 chain.
type pgRevision struct {
	ID, Down, Message string
	// Statements returns the DDL and DML of the step.
	Statements func(o pgOptions) []string
	// Before runs first inside the migration's transaction; it emulates the
	// scripts' pre-flight checks.
	Before func(ctx context.Context, q rowQuerier) error
}

// rowQuerier is a transaction or connection a pre-flight check reads.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// pgOptions are the variations of the chain the emulator can produce.
type pgOptions struct {
	// gap5774: 8bf38a6bb3b5 creates model_usage_details(_archive) without
	// `completed`, as v2.2.0rc1–rc3 did (#5774).
	gap5774 bool
	// alwaysDefaultCluster: 924c9a0b4c13 as v2.0.0 shipped it inserts the
	// Default Cluster unconditionally (edited in place at v2.0.1rc1).
	alwaysDefaultCluster bool
}

// pgOptionsFor are the options the release's own scripts imply.
func pgOptionsFor(rel Release, gap5774 bool) pgOptions {
	return pgOptions{gap5774: gap5774, alwaysDefaultCluster: !rel.atLeast(2, 0, 1)}
}

// sqliteEraIDs are revisions 1–9, folded into the base step on PostgreSQL.
var sqliteEraIDs = []string{
	"1dd9fa5b38ff", "8277680cfcb7", "6dcb3a50da19", "f29521415cbd", "0f7dde8b3c4b",
	"004c73a5c09e", "e6bf9e067296", "c45e397531d1", "cbbc03c88985",
}

// BaseRevision is the v0.7.1 head: where `gpustack migrate` brings both
// databases before copying, and where every v2 chain starts.
const BaseRevision = "d19176de3b74"

const pgStamps = "created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL"

// pgBase creates the schema of d19176de3b74: the tables and columns of
// revisions 1–10, with PostgreSQL types and the enum types GPUStack's
// models declare.
func pgBase(pgOptions) []string {
	return []string{
		"CREATE TYPE sourceenum AS ENUM ('HUGGING_FACE', 'OLLAMA_LIBRARY', 'MODEL_SCOPE', 'LOCAL_PATH')",
		"CREATE TYPE workerstateenum AS ENUM ('NOT_READY', 'READY', 'UNREACHABLE')",
		"CREATE TYPE modelinstancestateenum AS ENUM ('INITIALIZING', 'PENDING', 'STARTING', 'RUNNING', 'SCHEDULED', 'ERROR', 'DOWNLOADING', 'ANALYZING', 'UNREACHABLE')",
		"CREATE TYPE modelfilestateenum AS ENUM ('ERROR', 'DOWNLOADING', 'READY')",
		"CREATE TYPE placementstrategyenum AS ENUM ('SPREAD', 'BINPACK')",
		"CREATE TYPE operationenum AS ENUM ('COMPLETION', 'CHAT_COMPLETION', 'EMBEDDING', 'RERANK', 'IMAGE_GENERATION', 'IMAGE_EDIT', 'AUDIO_TRANSCRIPTION', 'AUDIO_SPEECH')",
		"CREATE TABLE users (id SERIAL PRIMARY KEY, " + pgStamps + `,
	username VARCHAR NOT NULL,
	is_admin BOOLEAN NOT NULL,
	full_name VARCHAR,
	require_password_change BOOLEAN NOT NULL,
	hashed_password VARCHAR NOT NULL,
	source VARCHAR(255) NOT NULL DEFAULT 'Local',
	avatar_url TEXT,
	CONSTRAINT users_username_key UNIQUE (username))`,
		"CREATE TABLE api_keys (id SERIAL PRIMARY KEY, " + pgStamps + `,
	name VARCHAR NOT NULL,
	description TEXT,
	access_key VARCHAR NOT NULL,
	hashed_secret_key VARCHAR NOT NULL,
	user_id INTEGER NOT NULL,
	expires_at TIMESTAMP WITHOUT TIME ZONE,
	CONSTRAINT api_keys_hashed_secret_key_key UNIQUE (hashed_secret_key),
	CONSTRAINT uix_name_user_id UNIQUE (name, user_id),
	CONSTRAINT fk_api_keys_user_id_users FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE)`,
		"CREATE UNIQUE INDEX ix_api_keys_access_key ON api_keys (access_key)",
		"CREATE TABLE models (id SERIAL PRIMARY KEY, " + pgStamps + `,
	name VARCHAR NOT NULL,
	description TEXT,
	source sourceenum NOT NULL,
	huggingface_repo_id VARCHAR,
	huggingface_filename VARCHAR,
	ollama_library_model_name VARCHAR,
	model_scope_model_id VARCHAR,
	model_scope_file_path VARCHAR,
	local_path VARCHAR,
	replicas INTEGER NOT NULL,
	ready_replicas INTEGER NOT NULL,
	embedding_only BOOLEAN NOT NULL DEFAULT false,
	image_only BOOLEAN NOT NULL DEFAULT false,
	reranker BOOLEAN NOT NULL DEFAULT false,
	speech_to_text BOOLEAN NOT NULL DEFAULT false,
	text_to_speech BOOLEAN NOT NULL DEFAULT false,
	categories JSON,
	placement_strategy placementstrategyenum NOT NULL DEFAULT 'SPREAD',
	cpu_offloading BOOLEAN NOT NULL DEFAULT true,
	distributed_inference_across_workers BOOLEAN NOT NULL DEFAULT true,
	worker_selector JSON,
	gpu_selector JSON,
	distributable BOOLEAN NOT NULL DEFAULT false,
	backend VARCHAR,
	backend_version VARCHAR,
	backend_parameters JSON,
	meta JSON,
	env JSON,
	restart_on_error BOOLEAN,
	CONSTRAINT models_name_key UNIQUE (name))`,
		"CREATE TABLE system_loads (id SERIAL PRIMARY KEY, " + pgStamps + `,
	"timestamp" INTEGER NOT NULL,
	cpu DOUBLE PRECISION,
	ram DOUBLE PRECISION,
	gpu DOUBLE PRECISION,
	vram DOUBLE PRECISION)`,
		"CREATE TABLE workers (id SERIAL PRIMARY KEY, " + pgStamps + `,
	name VARCHAR NOT NULL,
	hostname VARCHAR NOT NULL,
	ip VARCHAR NOT NULL,
	port INTEGER NOT NULL DEFAULT 10150,
	labels JSON,
	system_reserved JSON,
	state workerstateenum NOT NULL,
	state_message TEXT,
	status JSON,
	unreachable BOOLEAN NOT NULL DEFAULT false,
	heartbeat_time TIMESTAMP WITHOUT TIME ZONE,
	worker_uuid VARCHAR(255) NOT NULL DEFAULT '',
	CONSTRAINT workers_name_key UNIQUE (name))`,
		"CREATE INDEX ix_workers_worker_uuid ON workers (worker_uuid)",
		"CREATE TABLE model_instances (id SERIAL PRIMARY KEY, " + pgStamps + `,
	source sourceenum NOT NULL,
	huggingface_repo_id VARCHAR,
	huggingface_filename VARCHAR,
	ollama_library_model_name VARCHAR,
	model_scope_model_id VARCHAR,
	model_scope_file_path VARCHAR,
	local_path VARCHAR,
	name VARCHAR NOT NULL,
	worker_id INTEGER,
	worker_name VARCHAR,
	worker_ip VARCHAR,
	pid INTEGER,
	port INTEGER,
	ports JSON,
	download_progress DOUBLE PRECISION,
	resolved_path VARCHAR,
	restart_count INTEGER,
	last_restart_time TIMESTAMP WITHOUT TIME ZONE,
	state modelinstancestateenum NOT NULL,
	state_message TEXT,
	computed_resource_claim JSON,
	gpu_indexes JSON,
	gpu_addresses JSON,
	model_id INTEGER NOT NULL,
	model_name VARCHAR NOT NULL,
	distributed_servers JSON,
	CONSTRAINT model_instances_name_key UNIQUE (name),
	CONSTRAINT fk_model_instances_model_id_models FOREIGN KEY (model_id) REFERENCES models (id) ON DELETE CASCADE)`,
		"CREATE TABLE model_usages (id SERIAL PRIMARY KEY, " + pgStamps + `,
	user_id INTEGER NOT NULL,
	model_id INTEGER NOT NULL,
	date DATE NOT NULL,
	prompt_token_count INTEGER NOT NULL,
	completion_token_count INTEGER NOT NULL,
	request_count INTEGER NOT NULL,
	operation operationenum NOT NULL,
	CONSTRAINT fk_model_usages_user_id_users FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
	CONSTRAINT fk_model_usages_model_id_models FOREIGN KEY (model_id) REFERENCES models (id) ON DELETE CASCADE)`,
		"CREATE TABLE model_files (id SERIAL PRIMARY KEY, " + pgStamps + `,
	source sourceenum NOT NULL,
	huggingface_repo_id VARCHAR,
	huggingface_filename VARCHAR,
	ollama_library_model_name VARCHAR,
	model_scope_model_id VARCHAR,
	model_scope_file_path VARCHAR,
	local_path VARCHAR,
	source_index VARCHAR,
	size BIGINT,
	download_progress DOUBLE PRECISION,
	resolved_paths JSON,
	state modelfilestateenum NOT NULL,
	state_message TEXT,
	cleanup_on_delete BOOLEAN,
	local_dir VARCHAR,
	worker_id INTEGER)`,
		`CREATE TABLE modelinstancemodelfilelink (
	model_instance_id INTEGER NOT NULL,
	model_file_id INTEGER NOT NULL,
	PRIMARY KEY (model_instance_id, model_file_id),
	CONSTRAINT fk_model_instance_model_file_link_model_files FOREIGN KEY (model_file_id) REFERENCES model_files (id) ON DELETE RESTRICT,
	CONSTRAINT fk_model_instance_model_file_link_model_instances FOREIGN KEY (model_instance_id) REFERENCES model_instances (id) ON DELETE CASCADE)`,
	}
}

func static(s ...string) func(pgOptions) []string { return func(pgOptions) []string { return s } }

// dropForeignKeys drops every foreign key of a table, whatever its name.
func dropForeignKeys(table string) string {
	return `DO $$DECLARE c record; BEGIN
	FOR c IN SELECT conname FROM pg_constraint WHERE conrelid = '` + table + `'::regclass AND contype = 'f' LOOP
		EXECUTE format('ALTER TABLE ` + table + ` DROP CONSTRAINT %I', c.conname);
	END LOOP; END$$`
}

// ownerColumn adds owner_principal_id to a table, filled with the
// platform org, optionally NOT NULL.
func ownerColumn(table string, notNull bool) []string {
	s := []string{
		"ALTER TABLE " + table + " ADD COLUMN owner_principal_id INTEGER REFERENCES principals (id)",
		"UPDATE " + table + " SET owner_principal_id = (SELECT id FROM principals WHERE kind = 'ORG' AND name = 'default')",
	}
	if notNull {
		s = append(s, "ALTER TABLE "+table+" ALTER COLUMN owner_principal_id SET NOT NULL")
	}
	return s
}

// usageDetails creates model_usage_details or its archive; `completed`
// only exists from v2.2.0rc4's edit of 8bf38a6bb3b5 (#5774).
func usageDetails(name string, o pgOptions) string {
	completed := ",\n\tcompleted BOOLEAN NOT NULL DEFAULT false"
	if o.gap5774 {
		completed = ""
	}
	return "CREATE TABLE IF NOT EXISTS " + name + " (id BIGSERIAL PRIMARY KEY, " + pgStamps + `,
	model_usage_id INTEGER,
	request_id VARCHAR,
	model_name VARCHAR,
	user_id INTEGER,
	prompt_token_count BIGINT NOT NULL DEFAULT 0,
	completion_token_count BIGINT NOT NULL DEFAULT 0,
	prompt_cached_token_count BIGINT NOT NULL DEFAULT 0` + completed + ")"
}

func meteredTable(name string) []string {
	return []string{
		"CREATE TABLE " + name + " (id BIGSERIAL PRIMARY KEY, " + pgStamps + `,
	owner_principal_id INTEGER,
	resource_type VARCHAR NOT NULL,
	resource_id INTEGER,
	resource_name VARCHAR,
	sku VARCHAR NOT NULL,
	sku_count INTEGER,
	period_start TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	period_end TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	CONSTRAINT uq_` + name + ` UNIQUE (resource_type, resource_id, sku, period_start))`,
		"CREATE INDEX ix_" + name + "_owner_principal_id ON " + name + " (owner_principal_id)",
	}
}

func eventsTable(name string) []string {
	return []string{
		"CREATE TABLE " + name + " (id BIGSERIAL PRIMARY KEY, " + pgStamps + `,
	owner_principal_id INTEGER,
	resource_type VARCHAR NOT NULL,
	resource_id INTEGER,
	event_type VARCHAR NOT NULL,
	payload JSON)`,
		"CREATE INDEX ix_" + name + "_resource ON " + name + " (resource_type, resource_id)",
	}
}

func gpuInstanceTable(name, extra string) string {
	return "CREATE TABLE " + name + " (id SERIAL PRIMARY KEY, " + pgStamps + `,
	deleted_at TIMESTAMP WITHOUT TIME ZONE,
	name VARCHAR NOT NULL,
	description TEXT,
	owner_principal_id INTEGER NOT NULL REFERENCES principals (id),
	creator_id INTEGER` + extra + ")"
}

// pgChain is the v2 chain, base step first.
var pgChain = []*pgRevision{
	{ID: BaseRevision, Message: "GPUStack v0.7.1 (revisions 1–10)", Statements: pgBase},
	{ID: "924c9a0b4c13", Down: BaseRevision, Message: "v2.0 database migration", Statements: v2Migration},
	{ID: "f3d36b2d11f8", Down: "924c9a0b4c13", Message: "add worker metrics port", Statements: static(
		"ALTER TABLE workers ADD COLUMN metrics_port INTEGER",
	)},
	{ID: "2025_10_07_add_is_active", Down: "f3d36b2d11f8", Message: "add is_active field to users", Statements: static(
		"ALTER TABLE users ADD COLUMN is_active BOOLEAN NOT NULL DEFAULT true",
	)},
	{ID: "eeacfbc6a2bf", Down: "2025_10_07_add_is_active", Message: "Model Access Control", Statements: static(
		"CREATE TYPE accesspolicyenum AS ENUM ('PUBLIC', 'AUTHED', 'ALLOWED_USERS')",
		"ALTER TABLE models ADD COLUMN access_policy accesspolicyenum NOT NULL DEFAULT 'AUTHED'",
		"ALTER TABLE api_keys ADD COLUMN allowed_model_names JSON",
		`CREATE TABLE modeluserlink (
	model_id INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (model_id, user_id))`,
	)},
	{ID: "nrxtab43e8j8", Down: "eeacfbc6a2bf", Message: "add image_name and run_command", Statements: static(
		"ALTER TABLE models ADD COLUMN image_name VARCHAR",
		"ALTER TABLE models ADD COLUMN run_command VARCHAR",
		"ALTER TABLE models ADD COLUMN extended_kv_cache JSON",
		"ALTER TABLE models DROP COLUMN embedding_only",
		"ALTER TABLE models DROP COLUMN reranker",
		"ALTER TABLE models DROP COLUMN image_only",
		"ALTER TABLE models DROP COLUMN speech_to_text",
		"ALTER TABLE models DROP COLUMN text_to_speech",
		"ALTER TABLE models DROP COLUMN ollama_library_model_name",
		"ALTER TABLE model_instances DROP COLUMN ollama_library_model_name",
		"ALTER TABLE model_files DROP COLUMN ollama_library_model_name",
		"CREATE TABLE inference_backends (id SERIAL PRIMARY KEY, "+pgStamps+`,
	backend_name VARCHAR NOT NULL,
	version_configs JSON,
	default_version VARCHAR,
	default_backend_param JSON,
	default_run_command VARCHAR,
	health_check_path VARCHAR,
	description VARCHAR,
	CONSTRAINT inference_backends_backend_name_key UNIQUE (backend_name))`,
	)},
	{ID: "35e8ebcae667", Down: "nrxtab43e8j8", Message: "add worker ifname", Statements: static(
		"ALTER TABLE model_instances ADD COLUMN worker_ifname VARCHAR",
		"ALTER TABLE workers ADD COLUMN ifname VARCHAR",
	)},
	{ID: "eca16ce6dedd", Down: "35e8ebcae667", Message: "add authproviderenum", Statements: static(
		"CREATE TYPE authproviderenum AS ENUM ('Local', 'OIDC', 'SAML')",
		"ALTER TABLE users ALTER COLUMN source DROP DEFAULT",
		"ALTER TABLE users ALTER COLUMN source TYPE authproviderenum USING source::authproviderenum",
		"ALTER TABLE users ALTER COLUMN source SET DEFAULT 'Local'",
	)},
	{ID: "7737c7eba9c4", Down: "eca16ce6dedd", Message: "Server Proxy Improvement", Statements: static(
		"ALTER TABLE clusters ADD COLUMN gateway_endpoint VARCHAR",
		"ALTER TABLE clusters ADD COLUMN reported_gateway_endpoint VARCHAR",
	)},
	{ID: "912d04e0d1d0", Down: "7737c7eba9c4", Message: "support speculative config", Statements: static(
		"ALTER TABLE models ADD COLUMN speculative_config JSON",
		"ALTER TABLE model_instances ADD COLUMN draft_model_download_progress DOUBLE PRECISION",
		"ALTER TABLE model_instances ADD COLUMN draft_model_resolved_path VARCHAR",
		"ALTER TABLE model_instances ADD COLUMN draft_model_source JSON",
		`CREATE TABLE modelinstancedraftmodelfilelink (
	model_instance_id INTEGER NOT NULL REFERENCES model_instances (id) ON DELETE CASCADE,
	model_file_id INTEGER NOT NULL REFERENCES model_files (id) ON DELETE RESTRICT,
	PRIMARY KEY (model_instance_id, model_file_id))`,
	)},
	{ID: "2ea2c247a117", Down: "912d04e0d1d0", Message: "Gateway Followup", Statements: static(
		"ALTER TABLE model_usages ALTER COLUMN operation DROP NOT NULL",
		"ALTER TABLE model_usages ALTER COLUMN user_id DROP NOT NULL",
		"ALTER TABLE model_usages ADD COLUMN access_key VARCHAR",
		"ALTER TABLE models ADD COLUMN generic_proxy BOOLEAN DEFAULT false",
	)},
	{ID: "89cb8df41bf0", Down: "2ea2c247a117", Message: "update cpu_offloading to nullable", Statements: static(
		"ALTER TABLE models ALTER COLUMN cpu_offloading DROP NOT NULL",
	)},
	{ID: "bb9ce21dcc10", Down: "89cb8df41bf0", Message: "add the mapping of model backend field", Statements: static(
		`UPDATE models SET backend = CASE backend WHEN 'vllm' THEN 'vLLM' WHEN 'ascend-mindie' THEN 'MindIE' WHEN 'vox-box' THEN 'VoxBox' ELSE backend END
	WHERE backend IN ('vllm', 'ascend-mindie', 'vox-box')`,
	)},
	{ID: "433346ba0efd", Down: "bb9ce21dcc10", Message: "add maintenance to worker", Statements: static(
		"ALTER TABLE workers ADD COLUMN maintenance JSON",
		"ALTER TYPE workerstateenum ADD VALUE 'MAINTENANCE'",
	)},
	{ID: "e30134bd18dc", Down: "433346ba0efd", Message: "migrate model instance port to ports", Statements: static(
		`UPDATE model_instances SET ports = json_build_array(port)
	WHERE port IS NOT NULL AND (ports IS NULL OR ports::text IN ('[]', 'null'))`,
	)},
	{ID: "2aed534bd7b2", Down: "e30134bd18dc", Message: "v2.0.2 database changes", Statements: static(
		"CREATE TYPE modelinstanceproxymodeenum AS ENUM ('WORKER', 'DIRECT', 'DELEGATED')",
		"ALTER TABLE workers ADD COLUMN proxy_mode modelinstanceproxymodeenum",
		"ALTER TABLE workers ADD COLUMN advertise_address VARCHAR",
		"ALTER TABLE model_instances ADD COLUMN worker_advertise_address VARCHAR",
		"ALTER TABLE model_instances ADD COLUMN backend VARCHAR",
		"ALTER TABLE model_instances ADD COLUMN backend_version VARCHAR",
		"ALTER TABLE clusters ADD COLUMN server_url VARCHAR",
		"ALTER TABLE clusters ADD COLUMN worker_config JSON",
		"ALTER TABLE clusters ADD COLUMN is_default BOOLEAN NOT NULL DEFAULT false",
		"UPDATE clusters SET is_default = true WHERE id = (SELECT min(id) FROM clusters)",
		"ALTER TABLE models ALTER COLUMN run_command TYPE TEXT",
		"ALTER TABLE inference_backends ALTER COLUMN default_run_command TYPE TEXT",
		"ALTER TABLE inference_backends ADD COLUMN default_entrypoint VARCHAR",
		"DELETE FROM modelinstancemodelfilelink WHERE model_file_id IN (SELECT id FROM model_files WHERE source = 'OLLAMA_LIBRARY')",
		"DELETE FROM modelinstancedraftmodelfilelink WHERE model_file_id IN (SELECT id FROM model_files WHERE source = 'OLLAMA_LIBRARY')",
		"DELETE FROM model_instances WHERE source = 'OLLAMA_LIBRARY' OR model_id IN (SELECT id FROM models WHERE source = 'OLLAMA_LIBRARY')",
		"DELETE FROM model_files WHERE source = 'OLLAMA_LIBRARY'",
		"DELETE FROM models WHERE source = 'OLLAMA_LIBRARY'",
	)},
	{ID: "53667f33f000", Down: "2aed534bd7b2", Message: "v2.1.0 database changes", Statements: static(
		"CREATE TABLE model_providers (id SERIAL PRIMARY KEY, "+pgStamps+`,
	deleted_at TIMESTAMP WITHOUT TIME ZONE,
	name VARCHAR NOT NULL,
	description TEXT,
	provider_type VARCHAR,
	config JSON,
	proxy_url VARCHAR,
	timeout INTEGER,
	api_tokens JSON,
	models JSON,
	CONSTRAINT model_providers_name_key UNIQUE (name))`,
		"CREATE TABLE model_routes (id SERIAL PRIMARY KEY, "+pgStamps+`,
	deleted_at TIMESTAMP WITHOUT TIME ZONE,
	name VARCHAR NOT NULL,
	description TEXT,
	categories JSON,
	meta JSON,
	generic_proxy BOOLEAN DEFAULT false,
	created_by_model BOOLEAN NOT NULL DEFAULT false,
	access_policy accesspolicyenum NOT NULL DEFAULT 'AUTHED',
	targets INTEGER NOT NULL DEFAULT 0,
	ready_targets INTEGER NOT NULL DEFAULT 0,
	CONSTRAINT model_routes_name_key UNIQUE (name))`,
		"CREATE TABLE model_route_targets (id SERIAL PRIMARY KEY, "+pgStamps+`,
	deleted_at TIMESTAMP WITHOUT TIME ZONE,
	name VARCHAR NOT NULL,
	route_id INTEGER NOT NULL REFERENCES model_routes (id) ON DELETE CASCADE,
	route_name VARCHAR,
	model_id INTEGER REFERENCES models (id) ON DELETE CASCADE,
	provider_id INTEGER REFERENCES model_providers (id) ON DELETE CASCADE,
	provider_model_name VARCHAR,
	weight INTEGER NOT NULL DEFAULT 100,
	state VARCHAR,
	fallback_status_codes JSON)`,
		`CREATE TABLE IF NOT EXISTS usermodelroutelink (
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	route_id INTEGER NOT NULL REFERENCES model_routes (id) ON DELETE CASCADE,
	PRIMARY KEY (user_id, route_id))`,
		`INSERT INTO model_routes (created_at, updated_at, name, description, categories, generic_proxy, created_by_model, access_policy, targets)
	SELECT now(), now(), name, description, categories, generic_proxy, true, access_policy, 1 FROM models`,
		`INSERT INTO model_route_targets (created_at, updated_at, name, route_id, route_name, model_id, weight)
	SELECT now(), now(), m.name, r.id, r.name, m.id, 100 FROM models m JOIN model_routes r ON r.name = m.name`,
		`INSERT INTO usermodelroutelink (user_id, route_id)
	SELECT l.user_id, r.id FROM modeluserlink l JOIN models m ON m.id = l.model_id JOIN model_routes r ON r.name = m.name`,
		"ALTER TABLE model_usages ALTER COLUMN model_id DROP NOT NULL",
		"ALTER TABLE model_usages ADD COLUMN model_name VARCHAR",
		"UPDATE model_usages u SET model_name = coalesce((SELECT m.name FROM models m WHERE m.id = u.model_id), '')",
		"ALTER TABLE model_usages ALTER COLUMN model_name SET NOT NULL",
		"ALTER TABLE model_usages ADD COLUMN provider_id INTEGER REFERENCES model_providers (id) ON DELETE SET NULL",
		"ALTER TABLE model_instances ADD COLUMN api_detected_backend_version VARCHAR",
		"ALTER TABLE model_instances ADD COLUMN gpu_type VARCHAR",
		"ALTER TYPE clusterstateenum ADD VALUE 'PENDING'",
		`UPDATE models SET gpu_selector = replace(replace(replace(gpu_selector::text, ':npu:', ':cann:'), ':dcu:', ':dtk:'), ':mlu:', ':neuware:')::json
	WHERE gpu_selector IS NOT NULL`,
		"CREATE TABLE benchmarks (id SERIAL PRIMARY KEY, "+pgStamps+`,
	deleted_at TIMESTAMP WITHOUT TIME ZONE,
	name VARCHAR NOT NULL,
	description TEXT,
	model_id INTEGER,
	model_name VARCHAR,
	cluster_id INTEGER,
	state VARCHAR,
	state_message TEXT,
	config JSON,
	result JSON,
	CONSTRAINT benchmarks_name_key UNIQUE (name))`,
		"ALTER TABLE inference_backends ADD COLUMN backend_source VARCHAR",
		"ALTER TABLE inference_backends ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT true",
		"ALTER TABLE inference_backends ADD COLUMN icon VARCHAR",
		"ALTER TABLE inference_backends ADD COLUMN default_env JSON",
		"ALTER TABLE inference_backends ALTER COLUMN description TYPE TEXT",
		"UPDATE model_files SET source_index = model_scope_model_id || coalesce(':' || model_scope_file_path, '') WHERE source = 'MODEL_SCOPE'",
		"ALTER TABLE model_usages ALTER COLUMN prompt_token_count TYPE BIGINT",
		"ALTER TABLE model_usages ALTER COLUMN completion_token_count TYPE BIGINT",
		"ALTER TABLE model_usages ALTER COLUMN request_count TYPE BIGINT",
	)},
	{ID: "8ad0f94c92e8", Down: "53667f33f000", Message: "v2.1.1 migrate legacy backend_source to CUSTOM", Statements: static(
		"UPDATE inference_backends SET backend_source = 'CUSTOM' WHERE backend_source IS NULL AND backend_name LIKE '%-custom'",
	)},
	{ID: "8bf38a6bb3b5", Down: "8ad0f94c92e8", Message: "v2.2.0 add worker version", Statements: func(o pgOptions) []string {
		// Every add_column of the real script is guarded by column_exists.
		return []string{
			"ALTER TABLE workers ADD COLUMN IF NOT EXISTS worker_version VARCHAR",
			"ALTER TABLE workers ADD COLUMN IF NOT EXISTS proxy_address VARCHAR",
			"ALTER TABLE clusters ADD COLUMN IF NOT EXISTS k8s_options JSON",
			"UPDATE clusters SET k8s_options = json_build_object('namespace', 'gpustack-system') WHERE provider = 'Kubernetes' AND k8s_options IS NULL",
			"ALTER TABLE clusters ADD COLUMN IF NOT EXISTS system_default_container_registry VARCHAR",
			"UPDATE clusters SET system_default_container_registry = worker_config->>'system_default_container_registry' WHERE worker_config IS NOT NULL",
			"ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS is_custom BOOLEAN NOT NULL DEFAULT false",
			"ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS scope JSON",
			`UPDATE api_keys SET scope = '["*"]' WHERE scope IS NULL`,
			"ALTER TABLE model_usages ADD COLUMN IF NOT EXISTS cluster_name VARCHAR",
			"ALTER TABLE model_usages ADD COLUMN IF NOT EXISTS user_name VARCHAR",
			"ALTER TABLE model_usages ADD COLUMN IF NOT EXISTS api_key_id INTEGER",
			"ALTER TABLE model_usages ADD COLUMN IF NOT EXISTS api_key_name VARCHAR",
			"ALTER TABLE model_usages ADD COLUMN IF NOT EXISTS provider_name VARCHAR",
			"ALTER TABLE model_usages ADD COLUMN IF NOT EXISTS provider_type VARCHAR",
			"ALTER TABLE model_usages ADD COLUMN IF NOT EXISTS api_key_is_custom BOOLEAN",
			"ALTER TABLE model_usages ADD COLUMN IF NOT EXISTS prompt_cached_token_count BIGINT",
			"ALTER TABLE model_usages ADD COLUMN IF NOT EXISTS model_route_id INTEGER",
			"ALTER TABLE model_usages ADD COLUMN IF NOT EXISTS model_route_name VARCHAR",
			"UPDATE model_usages u SET user_name = (SELECT username FROM users WHERE id = u.user_id) WHERE user_name IS NULL",
			dropForeignKeys("model_usages"),
			"ALTER TABLE model_usages ADD CONSTRAINT fk_model_usages_user_id_users FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL",
			"ALTER TABLE model_usages ADD CONSTRAINT fk_model_usages_model_id_models FOREIGN KEY (model_id) REFERENCES models (id) ON DELETE SET NULL",
			"ALTER TABLE model_usages ADD CONSTRAINT fk_model_usages_provider_id_model_providers FOREIGN KEY (provider_id) REFERENCES model_providers (id) ON DELETE SET NULL",
			"CREATE INDEX IF NOT EXISTS ix_model_usages_date ON model_usages (date)",
			"CREATE INDEX IF NOT EXISTS ix_model_usages_user_id ON model_usages (user_id)",
			"ALTER TABLE model_instances ADD COLUMN IF NOT EXISTS injected_backend_parameters JSON",
			usageDetails("model_usage_details", o),
			usageDetails("model_usage_details_archive", o),
			"ALTER TABLE inference_backends ADD COLUMN IF NOT EXISTS parameter_format VARCHAR",
			"ALTER TABLE inference_backends ADD COLUMN IF NOT EXISTS common_parameters JSON",
			"ALTER TABLE model_files ADD COLUMN IF NOT EXISTS is_lora BOOLEAN NOT NULL DEFAULT false",
			"ALTER TABLE model_files ADD COLUMN IF NOT EXISTS base_model VARCHAR",
			"ALTER TABLE models ADD COLUMN IF NOT EXISTS lora_list JSON",
			"ALTER TABLE model_instances ADD COLUMN IF NOT EXISTS mounted_loras JSON",
			"ALTER TABLE model_routes ADD COLUMN IF NOT EXISTS created_model_id INTEGER",
			"UPDATE model_routes r SET created_model_id = (SELECT m.id FROM models m WHERE m.name = r.name) WHERE created_by_model",
			"ALTER TABLE model_routes DROP COLUMN created_by_model",
			"CREATE INDEX ix_model_routes_created_model_id_name ON model_routes (created_model_id, name)",
			"ALTER TABLE model_route_targets RENAME COLUMN provider_model_name TO overridden_model_name",
		}
	}},
	{ID: "7c5e3f9a2d18", Down: "8bf38a6bb3b5", Message: "multi-tenancy foundation", Before: reservedOrgName, Statements: func(pgOptions) []string {
		s := []string{
			// SYSTEM is declared at type creation, as from v2.2.1 (#5676);
			// the bundled PostgreSQL 17 never showed the older failure.
			"CREATE TYPE principalkindenum AS ENUM ('USER', 'ORG', 'GROUP', 'SYSTEM')",
			"ALTER TABLE users RENAME TO principals",
			"ALTER TABLE principals ADD COLUMN kind principalkindenum NOT NULL DEFAULT 'USER'",
			"ALTER TABLE principals ADD COLUMN name VARCHAR",
			"ALTER TABLE principals ADD COLUMN display_name VARCHAR",
			"ALTER TABLE principals ADD COLUMN description TEXT",
			"ALTER TABLE principals ADD COLUMN parent_principal_id INTEGER REFERENCES principals (id) ON DELETE CASCADE",
			"UPDATE principals SET name = username, display_name = full_name, kind = CASE WHEN is_system THEN 'SYSTEM'::principalkindenum ELSE 'USER'::principalkindenum END",
			// The fact sheet names no key for user_passwords and
			// model_route_principals; like the other tables they get an id.
			"CREATE TABLE user_passwords (id SERIAL PRIMARY KEY, principal_id INTEGER NOT NULL UNIQUE REFERENCES principals (id) ON DELETE CASCADE, " + pgStamps + `,
	hashed_password VARCHAR NOT NULL,
	require_password_change BOOLEAN NOT NULL DEFAULT false)`,
			`INSERT INTO user_passwords (principal_id, created_at, updated_at, hashed_password, require_password_change)
	SELECT id, now(), now(), hashed_password, require_password_change FROM principals WHERE hashed_password IS NOT NULL AND hashed_password <> ''`,
			"ALTER TABLE principals DROP COLUMN username",
			"ALTER TABLE principals DROP COLUMN full_name",
			"ALTER TABLE principals DROP COLUMN hashed_password",
			"ALTER TABLE principals DROP COLUMN require_password_change",
			"ALTER TABLE principals DROP COLUMN cluster_id",
			"ALTER TABLE principals DROP COLUMN worker_id",
			"ALTER TABLE principals DROP COLUMN role",
			"ALTER TABLE principals DROP COLUMN is_system",
			"DROP TYPE userrole",
			`INSERT INTO principals (created_at, updated_at, kind, name, display_name, is_admin, source)
	VALUES (now(), now(), 'ORG', 'default', 'Default', false, 'Local')`,
			`INSERT INTO principals (created_at, updated_at, kind, name, display_name, is_admin, source, parent_principal_id)
	SELECT now(), now(), 'GROUP', 'system/authenticated', 'Authenticated users', false, 'Local', id FROM principals WHERE kind = 'ORG' AND name = 'default'`,
			"ALTER TABLE principals ALTER COLUMN name SET NOT NULL",
			"ALTER TABLE principals ADD CONSTRAINT uq_principals_kind_name UNIQUE (parent_principal_id, kind, name)",
			"CREATE TABLE principal_memberships (id SERIAL PRIMARY KEY, " + pgStamps + `,
	principal_id INTEGER NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
	parent_principal_id INTEGER NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
	role VARCHAR,
	source authproviderenum NOT NULL DEFAULT 'Local')`,
			`INSERT INTO principal_memberships (created_at, updated_at, principal_id, parent_principal_id, role)
	SELECT now(), now(), p.id, o.id, CASE WHEN p.is_admin THEN 'admin' ELSE 'member' END
	FROM principals p, principals o WHERE p.kind = 'USER' AND o.kind = 'ORG' AND o.name = 'default'`,
			"CREATE TABLE cluster_access (id SERIAL PRIMARY KEY, " + pgStamps + `,
	cluster_id INTEGER NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
	principal_id INTEGER NOT NULL REFERENCES principals (id) ON DELETE CASCADE)`,
			`CREATE TABLE model_route_principals (
	id SERIAL PRIMARY KEY,
	route_id INTEGER NOT NULL REFERENCES model_routes (id) ON DELETE CASCADE,
	principal_id INTEGER NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
	CONSTRAINT uq_model_route_principals UNIQUE (route_id, principal_id))`,
			"INSERT INTO model_route_principals (route_id, principal_id) SELECT route_id, user_id FROM usermodelroutelink",
			"DROP TABLE usermodelroutelink",
			"ALTER TYPE accesspolicyenum RENAME VALUE 'ALLOWED_USERS' TO 'ALLOWED_PRINCIPALS'",
			"ALTER TABLE api_keys ADD COLUMN owner_principal_id INTEGER REFERENCES principals (id) ON DELETE CASCADE",
			"UPDATE api_keys SET owner_principal_id = user_id",
			"ALTER TABLE api_keys ALTER COLUMN owner_principal_id SET NOT NULL",
		}
		for _, t := range []string{"models", "model_instances", "model_routes", "clusters", "cloud_credentials", "worker_pools"} {
			s = append(s, ownerColumn(t, true)...)
		}
		for _, t := range []string{"workers", "model_files", "benchmarks", "model_usages", "model_providers", "inference_backends"} {
			s = append(s, ownerColumn(t, false)...)
		}
		s = append(s,
			"ALTER TABLE models DROP CONSTRAINT models_name_key",
			"ALTER TABLE models ADD CONSTRAINT uq_models_owner_name UNIQUE (owner_principal_id, name)",
			"ALTER TABLE model_providers DROP CONSTRAINT model_providers_name_key",
			"ALTER TABLE model_providers ADD CONSTRAINT uq_model_providers_owner_name UNIQUE (owner_principal_id, name)",
			"ALTER TABLE model_routes DROP CONSTRAINT model_routes_name_key",
			"ALTER TABLE model_routes ADD CONSTRAINT uq_model_routes_owner_name UNIQUE (owner_principal_id, name)",
			"ALTER TABLE inference_backends DROP CONSTRAINT inference_backends_backend_name_key",
			"ALTER TABLE inference_backends ADD CONSTRAINT uq_inference_backends_owner_backend_name UNIQUE (owner_principal_id, backend_name)",
			"ALTER TABLE clusters ADD COLUMN system_principal_id INTEGER REFERENCES principals (id) ON DELETE SET NULL",
			"ALTER TABLE workers ADD COLUMN system_principal_id INTEGER REFERENCES principals (id) ON DELETE SET NULL",
		)
		return s
	}},
	{ID: "61929acb0676", Down: "7c5e3f9a2d18", Message: "gpu instances", Statements: static(
		gpuInstanceTable("gpu_instance_persistent_volume_types", ",\n\tsize_gb INTEGER,\n\tcluster_id INTEGER REFERENCES clusters (id) ON DELETE CASCADE"),
		gpuInstanceTable("gpu_instance_ssh_public_keys", ",\n\tpublic_key TEXT NOT NULL,\n\tfingerprint VARCHAR"),
		gpuInstanceTable("gpu_instance_templates", ",\n\timage VARCHAR,\n\tspec JSON"),
		gpuInstanceTable("gpu_instance_persistent_volumes", ",\n\tvolume_type_id INTEGER REFERENCES gpu_instance_persistent_volume_types (id),\n\tsize_gb INTEGER,\n\tstate VARCHAR"),
		gpuInstanceTable("gpu_instances", ",\n\ttemplate_id INTEGER REFERENCES gpu_instance_templates (id),\n\tcluster_id INTEGER REFERENCES clusters (id) ON DELETE CASCADE,\n\tworker_id INTEGER,\n\tstate VARCHAR,\n\tstate_message TEXT,\n\tspec JSON"),
	)},
	{ID: "b2c3d4e5f6a7", Down: "61929acb0676", Message: "metered usage and usage events", Statements: func(pgOptions) []string {
		var s []string
		for _, t := range []string{"metered_usage", "metered_usage_archive"} {
			s = append(s, meteredTable(t)...)
		}
		for _, t := range []string{"resource_events", "resource_events_archive"} {
			s = append(s, eventsTable(t)...)
		}
		return s
	}},
	{ID: "c4d7e8f9a0b1", Down: "b2c3d4e5f6a7", Message: "v2.2.2 database changes", Statements: static(
		"ALTER TABLE principals ALTER COLUMN source DROP DEFAULT",
		"ALTER TABLE principals ALTER COLUMN source TYPE VARCHAR(64) USING source::text",
		"ALTER TABLE principals ALTER COLUMN source SET DEFAULT 'Local'",
		"ALTER TABLE principal_memberships ALTER COLUMN source DROP DEFAULT",
		"ALTER TABLE principal_memberships ALTER COLUMN source TYPE VARCHAR(64) USING source::text",
		"ALTER TABLE principal_memberships ALTER COLUMN source SET DEFAULT 'Local'",
		"DROP TYPE authproviderenum",
		"ALTER TABLE api_keys ALTER COLUMN owner_principal_id DROP NOT NULL",
		"UPDATE metered_usage SET sku_count = 1 WHERE sku_count IS NULL",
		"UPDATE metered_usage_archive SET sku_count = 1 WHERE sku_count IS NULL",
		dropForeignKeys("model_usages"),
		"ALTER TABLE gpu_instance_persistent_volumes ADD COLUMN status JSON",
		"ALTER TABLE gpu_instance_persistent_volume_types ADD COLUMN status JSON",
		"ALTER TABLE model_usages ADD COLUMN consumer_name VARCHAR",
		"ALTER TABLE model_usages ADD COLUMN consumer_principal_kind VARCHAR",
		"ALTER TABLE metered_usage ADD COLUMN consumer_principal_kind VARCHAR",
		"ALTER TABLE metered_usage_archive ADD COLUMN consumer_principal_kind VARCHAR",
		"ALTER TABLE resource_events ADD COLUMN consumer_principal_kind VARCHAR",
		"ALTER TABLE resource_events_archive ADD COLUMN consumer_principal_kind VARCHAR",
	)},
}

// v2Migration is 924c9a0b4c13, "v2.0 database migration".
func v2Migration(o pgOptions) []string {
	defaultCluster := `INSERT INTO clusters (created_at, updated_at, name, description, provider, state, hashed_suffix, registration_token)
	SELECT now(), now(), 'Default Cluster', 'The default cluster', 'Docker', 'READY', substr(md5(random()::text), 1, 12), md5(random()::text)`
	if !o.alwaysDefaultCluster {
		// When there is something to attach to it. The real script keys
		// on workers; models and instances need a cluster for their NOT
		// NULL cluster_id as well.
		defaultCluster += "\n\tWHERE EXISTS (SELECT 1 FROM workers) OR EXISTS (SELECT 1 FROM models) OR EXISTS (SELECT 1 FROM model_instances)"
	}
	return []string{
		"CREATE TABLE cloud_credentials (id SERIAL PRIMARY KEY, " + pgStamps + `,
	deleted_at TIMESTAMP WITHOUT TIME ZONE,
	name VARCHAR NOT NULL,
	description TEXT,
	provider VARCHAR NOT NULL,
	key VARCHAR NOT NULL,
	secret VARCHAR NOT NULL,
	options JSON)`,
		"CREATE TYPE clusterprovider AS ENUM ('Docker', 'Kubernetes', 'DigitalOcean')",
		"CREATE TYPE clusterstateenum AS ENUM ('PROVISIONING', 'PROVISIONED', 'READY')",
		"CREATE TABLE clusters (id SERIAL PRIMARY KEY, " + pgStamps + `,
	deleted_at TIMESTAMP WITHOUT TIME ZONE,
	name VARCHAR NOT NULL,
	description TEXT,
	provider clusterprovider NOT NULL,
	credential_id INTEGER REFERENCES cloud_credentials (id),
	region VARCHAR,
	state clusterstateenum NOT NULL,
	state_message TEXT,
	hashed_suffix VARCHAR NOT NULL,
	registration_token VARCHAR NOT NULL)`,
		"CREATE TABLE worker_pools (id SERIAL PRIMARY KEY, " + pgStamps + `,
	deleted_at TIMESTAMP WITHOUT TIME ZONE,
	name VARCHAR NOT NULL,
	cluster_id INTEGER NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
	replicas INTEGER NOT NULL DEFAULT 1,
	batch_size INTEGER,
	labels JSON,
	instance_type VARCHAR,
	os_image VARCHAR,
	image_name VARCHAR,
	zone VARCHAR,
	cloud_options JSON)`,
		"CREATE TABLE credentials (id SERIAL PRIMARY KEY, " + pgStamps + `,
	deleted_at TIMESTAMP WITHOUT TIME ZONE,
	external_id VARCHAR,
	credential_type VARCHAR NOT NULL,
	public_key TEXT NOT NULL,
	encoded_private_key TEXT NOT NULL,
	ssh_key_options JSON)`,
		defaultCluster,
		"CREATE TYPE userrole AS ENUM ('Cluster', 'Worker')",
		"ALTER TABLE users ADD COLUMN cluster_id INTEGER REFERENCES clusters (id) ON DELETE CASCADE",
		"ALTER TABLE users ADD COLUMN worker_id INTEGER REFERENCES workers (id) ON DELETE CASCADE",
		"ALTER TABLE users ADD COLUMN is_system BOOLEAN NOT NULL DEFAULT false",
		"ALTER TABLE users ADD COLUMN role userrole",
		`INSERT INTO users (created_at, updated_at, username, is_admin, require_password_change, hashed_password, is_system, role, cluster_id)
	SELECT now(), now(), 'system/cluster-' || id, false, false, '', true, 'Cluster', id FROM clusters`,
		"ALTER TABLE workers ADD COLUMN cluster_id INTEGER REFERENCES clusters (id) ON DELETE CASCADE",
		"UPDATE workers SET cluster_id = (SELECT max(id) FROM clusters)",
		"ALTER TABLE workers ALTER COLUMN cluster_id SET NOT NULL",
		"ALTER TABLE workers ADD COLUMN provider clusterprovider NOT NULL DEFAULT 'Docker'",
		"ALTER TABLE workers ADD COLUMN worker_pool_id INTEGER REFERENCES worker_pools (id) ON DELETE CASCADE",
		"ALTER TABLE workers ADD COLUMN machine_id VARCHAR",
		"ALTER TABLE workers ADD COLUMN external_id VARCHAR",
		"ALTER TABLE workers ADD COLUMN ssh_key_id INTEGER REFERENCES credentials (id)",
		"ALTER TABLE workers ADD COLUMN provider_config JSON",
		"ALTER TABLE workers ADD COLUMN token VARCHAR",
		"ALTER TABLE models ADD COLUMN cluster_id INTEGER REFERENCES clusters (id) ON DELETE CASCADE",
		"UPDATE models SET cluster_id = (SELECT max(id) FROM clusters)",
		"ALTER TABLE models ALTER COLUMN cluster_id SET NOT NULL",
		"ALTER TABLE model_instances ADD COLUMN cluster_id INTEGER REFERENCES clusters (id) ON DELETE CASCADE",
		"UPDATE model_instances SET cluster_id = (SELECT max(id) FROM clusters)",
		"ALTER TABLE model_instances ALTER COLUMN cluster_id SET NOT NULL",
		"ALTER TABLE api_keys DROP CONSTRAINT uix_name_user_id",
		"ALTER TABLE api_keys ADD CONSTRAINT uix_user_id_name UNIQUE (user_id, name)",
		"ALTER TABLE system_loads ADD COLUMN cluster_id INTEGER",
		"CREATE INDEX ix_system_loads_cluster_id ON system_loads (cluster_id)",
		"ALTER TYPE workerstateenum ADD VALUE 'PENDING'",
		"ALTER TYPE workerstateenum ADD VALUE 'PROVISIONING'",
		"ALTER TYPE workerstateenum ADD VALUE 'INITIALIZING'",
		"ALTER TYPE workerstateenum ADD VALUE 'DELETING'",
		"ALTER TYPE workerstateenum ADD VALUE 'ERROR'",
	}
}

// reservedOrgName is 7c5e3f9a2d18's pre-flight abort.
func reservedOrgName(ctx context.Context, tx rowQuerier) error {
	var id int64
	err := tx.QueryRowContext(ctx, "SELECT id FROM users WHERE username = 'default'").Scan(&id)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("RuntimeError: Cannot upgrade: user id=%d username='default' collides with the reserved platform Org name 'default'; rename the user before upgrading", id)
}

// pgChainFor is the chain up to the release's head.
func pgChainFor(rel Release) []*pgRevision {
	head := rel.Head()
	for i, r := range pgChain {
		if r.ID == head {
			return pgChain[:i+1]
		}
	}
	return nil
}

func pgIndexIn(revs []*pgRevision, id string) int {
	for i, r := range revs {
		if r.ID == id {
			return i
		}
	}
	return -1
}

// statements are the revision's statements under the options.
func (r *pgRevision) statements(o pgOptions) []string {
	if r.Statements == nil {
		return nil
	}
	return r.Statements(o)
}
