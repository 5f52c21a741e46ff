// Package emulator is a stand-in for the GPUStack server at start-up, for
// end-to-end tests of gpustack-deploy: the SQLite era (0.1.1 … v0.7.1) and
// the v2 releases on their embedded PostgreSQL (v2.0.0 … v2.2.3) or on an
// external PostgreSQL or MySQL.
//
// It owns the emulated behaviour only: its own migration scripts per
// Alembic revision (written from the project's fact sheet, not from
// GPUStack's code), the start-up sequence with era-specific logging and exit
// codes, the HTTP probes, the model-cache side effects of c45e397531d1, and
// fault injection through environment variables. It must not read the
// project's catalog: the tests cross-check the two on purpose
// (TestPGChainAgainstCatalog, and the end-to-end suite).
//
// The binary built from cmd/gpustack-emulator is installed in images as
// /usr/local/bin/gpustack (SQLite era, FROM scratch) or /usr/bin/gpustack
// (v2, on a Debian base with PostgreSQL); package emulator/image builds
// those images.
//
// Commands:
//
//	gpustack start [flags]        the server start-up (unknown flags ignored)
//	gpustack start --server-url URL --token T [--worker-port P] [--worker-name N]
//	                              v2: a worker (see "Clusters" below)
//	gpustack version [--short]    "<version> (<commit7>)" or "<version>"
//	gpustack emulator rows        {"table": count, …} for every table
//	gpustack emulator seed --models N --instances M --users U [--worker NAME]
//	gpustack emulator sql STATEMENT   rows as JSON, or {"rows_affected": n}
//	gpustack emulator workers     the server's workers table as JSON (optional columns per release)
//	gpustack emulator debug [--port N]   the server's /debug/emulator (its "rescheduled" count)
//
// The emulator subcommands take --data-dir (default $GPUSTACK_DATA_DIR,
// then /var/lib/gpustack) and work while the server runs. In v2 images they
// connect to the running PostgreSQL as root over 127.0.0.1 (port from
// postmaster.pid) and print the same JSON as in the SQLite era; v2 users
// are rows of principals from 7c5e3f9a2d18 on. With an external database
// they connect to --database-url, else $GPUSTACK_DATABASE_URL (which
// `docker exec` inherits from the container), else the --database-url
// argument of PID 1 when PID 1 is `gpustack start` (/proc/1/cmdline; in
// process, outside a container, only the first two work); SQLite-era
// releases ignore the URL, at start and here.
//
// # The v2 era
//
// What is emulated, per the fact sheet (§2.1, §3.1–§3.3, §5.3, §7):
//
//   - The embedded PostgreSQL: PGDATA <data-dir>/postgresql/data (v2.0.0:
//     postgres/data; v2.0.1+ moves that to postgresql/data when the latter
//     is absent, and warns and uses postgresql/ when both exist, #3676),
//     created by initdb as uid/gid 9999 with mode 0700; superuser root with
//     the password of <data-dir>/postgres_root_pass (POSTGRES_PASSWORD or 16
//     random characters); database gpustack; pg_hba trusts root from
//     127.0.0.1, ::1 and the unix socket (/run/postgresql) and wants
//     scram-sha-256 otherwise; port --database-port / GPUSTACK_DATABASE_PORT
//     (5432); its log in <log-dir>/postgresql/postgresql.log (the container
//     log only gets what explains a failed start, and FATAL/PANIC lines
//     later). It runs as a child
//     with uid 9999, so a PGDATA with the wrong owner or mode fails with
//     PostgreSQL's own message (#3739) and the process exits 1. psql,
//     pg_dump and pg_restore are on PATH (/usr/lib/postgresql/15/bin first).
//   - SIGTERM: the HTTP server stops, then `pg_ctl stop -m fast`, so the
//     cluster is left "shut down" in pg_control well within Docker's 10 s.
//     An emulated crash (EXIT_AFTER) also stops PostgreSQL cleanly, as s6
//     does when the container ends.
//   - The schema: a hand-written PostgreSQL chain, the v0.7.1 head
//     d19176de3b74 as one base step, then revisions 11 … 32 (facts §3.2),
//     all pending steps in one transaction as Alembic does with
//     transactional_ddl, so a failure leaves the previous stamp. A stamp the
//     release does not know fails with "Can't locate revision identified by
//     '…'". Fresh installs of v2.0.1+ write <data-dir>/bootstrap_version.
//     Failures are logged per era: v2.0.x–v2.1.0 "Error running server:
//     Database migration failed: …" and exit 0; v2.1.1+ a traceback ending
//     in "RuntimeError: Database migration failed: …" and exit 1.
//   - The data migration v0.x → v2 (`gpustack migrate` run by prerun), when
//     GPUSTACK_DATA_MIGRATION=true (v2.0.1+; GPUSTACK_MIGRATION_DATA_DIR=<dir>
//     in v2.0.0, deprecated but still honoured later), <data-dir>/database.db
//     exists, run/state_migration_done does not, and no --database-url: the
//     SQLite file (and its -wal) is copied to gpustack_migration_temp_* files,
//     the copy is upgraded to d19176de3b74 with the SQLite chain, PostgreSQL
//     gets the base schema, the common columns of system_loads, workers,
//     users, api_keys, model_files, models, model_instances,
//     modelinstancemodelfilelink and model_usages are copied (one
//     transaction per table), sequences are reset, the copies deleted;
//     "Migration completed successfully." and the done-file follow, then the
//     normal upgrade to head. Errors: "Failed to migrate: …", exit 1.
//     database.db is never written. Without the flag a data dir holding
//     database.db starts on an empty PostgreSQL with a warning (§5.3); with
//     the done-file present the migration is skipped ("Migration already
//     completed previously. Skipping.", #3575).
//   - An external database (facts §2.2, §3.5): --database-url, else
//     GPUSTACK_DATABASE_URL, of scheme postgresql:// (or postgres://) or
//     mysql://user:password@host[:3306]/db.
//     No embedded PostgreSQL then: no initdb, postgresql/ or
//     postgres_root_pass. The emulator waits up to 30 s for the database
//     to accept connections; otherwise it logs "Error running server:
//     (psycopg.OperationalError) connection to <URL, password masked>
//     failed …" and exits 1 from v2.1.1 (0 before). The same chain
//     migrates it in one transaction with the same log lines, exit codes,
//     knobs and bootstrap_version; the data migration never runs (prerun
//     enables it only without --database-url, §3.1). sslmode defaults to
//     disable (libpq's prefer, without TLS). The password never reaches
//     the log.
//   - An external MySQL (mysql://; MariaDB 10.11 in the tests): the same
//     chain in MySQL dialect, translated from the PostgreSQL DDL
//     (mysqlschema.go: enums as VARCHAR(64), DATETIME(6), VARCHAR(255),
//     AUTO_INCREMENT ids, MODIFY COLUMN for nullability and type changes,
//     ALTER TYPE … ADD VALUE dropped), driven by go-sql-driver/mysql.
//     MySQL DDL is not transactional: the run keeps autocommit off as
//     pymysql does, so each DDL statement commits what precedes it, and a
//     failure keeps the statements applied so far and the stamp of the last
//     revision that finished. FAIL_MIGRATION=<rev> thus half-applies <rev>;
//     the next start fails on it again with pymysql's
//     "(pymysql.err.OperationalError) (1060, "Duplicate column name '…'")"
//     wrapped per era (#3202, facts §3.1). Errors read as pymysql's; an
//     unreachable server as "(pymysql.err.OperationalError) (2003, "Can't
//     connect to MySQL server on 'host:port' (…)")" after the same 30 s.
//     Same log lines, exit codes, knobs, /healthz and /version, and the
//     emulator subcommands print the same JSON.
//   - #5774: from v2.2.0rc4 the code writes model_usage_details.completed;
//     when the column is missing every usage flush (at start, then every
//     10 s) fails in the log and in PostgreSQL's log. The server stays
//     healthy, as the real one does.
//
// # Clusters (v2)
//
// Facts §6 and §7 ("Worker downtime during upgrades", "Arguments lost on
// recreate"). A v2 `gpustack start` given --server-url (-s, or
// GPUSTACK_SERVER_URL) runs as a worker: no database, no migration. It
// keeps worker_uuid and worker_name in its data dir (written at the first
// start; --worker-name / GPUSTACK_WORKER_NAME, else the saved name, else the
// hostname), so a container recreated on the same volume is the same
// worker row. It serves /healthz, /readyz, /version and /debug/emulator on
// --worker-port (GPUSTACK_WORKER_PORT, default 10150), then registers and
// sends a heartbeat every GPUSTACK_EMULATOR_HEARTBEAT_INTERVAL (30 s). A
// refused registration is logged ("Failed to register worker: POST
// /v2/emulator/workers/register: 401 Unauthorized: Invalid token") and
// retried at that pace. Without --token / GPUSTACK_TOKEN it logs
// "Failed to register worker: 'NoneType' object has no attribute
// 'create_async'" (#5714) and exits 1. From v2.2.0 it reads the server's
// /version first and, on a different string (0.0.0 being a dev build),
// logs "Version mismatch detected: worker version X, server version Y.
// Please upgrade your worker to match the server version." and registers
// anyway.
//
// The server's worker API is the emulator's own, authenticated with
// "Authorization: Bearer <registration token>" (--token, else
// <data-dir>/token):
//
//	POST /v2/emulator/workers/register       {"name", "worker_uuid", "worker_version", "port"} → {"id", "name"}
//	POST /v2/emulator/workers/{id}/heartbeat {"worker_version"} → {"id"}; 404 makes the worker register again
//
// A registration matches the row by worker_uuid; a name held by another
// uuid is a 409. The public API follows GPUStack's, authenticated as
// GPUStack takes API keys, "Authorization: Bearer <key>", where the only
// key is GPUSTACK_EMULATOR_ADMIN_API_KEY (unset: every call is a 401):
//
//	GET /v2/workers        {"items": [{"id", "name", "state", "worker_uuid", "worker_version",
//	                        "heartbeat_time", "maintenance": {"enabled", "message"}}], "pagination": {…}}
//	GET /v2/workers/{id}   one item
//	PUT /v2/workers/{id}   {"maintenance": {"enabled": true, "message": "…"}} → the item
//
// A loop (every second, faster for short graces) sets state from the rows:
// MAINTENANCE while maintenance.enabled, NOT_READY once heartbeat_time is
// older than GPUSTACK_WORKER_HEARTBEAT_GRACE_PERIOD (seconds, default 150),
// READY otherwise. A worker not in maintenance that stays silent for
// GPUSTACK_MODEL_INSTANCE_RESCHEDULE_GRACE_PERIOD (default 300) more loses
// its model_instances rows (worker_id): each deletion logs "Rescheduling
// model instance <name>: worker <name> is unreachable …" and counts in
// "rescheduled" of /debug/emulator. The emulator does not place the
// instances anywhere else. `gpustack emulator seed --instances N --worker
// NAME` puts instances on a registered worker. Grace periods take seconds
// ("1.5") or Go durations.
//
// Deviations from GPUStack's v2 image: PostgreSQL 15 from Debian bookworm
// instead of 17 (no Ubuntu base, no extra repositories); it listens on
// 127.0.0.1 only instead of '*', to keep tests isolated on host networks;
// no s6 supervision, Higress gateway, Prometheus or Grafana (the emulator
// serves /healthz, /readyz and /version itself on --port); workers register
// through the emulator's own endpoints, not GPUStack's worker API, and have
// no GPUs, system load, inference servers or cluster tokens beyond the
// server's one token; no collation
// refresh or REINDEX at start; JIT off; MySQL's enums are VARCHAR(64)
// columns (SQLAlchemy would declare inline ENUMs), its JSON columns
// MariaDB's LONGTEXT with a JSON check; the table layouts beyond what the fact
// sheet names (types, extra columns, keys) are the emulator's own guesses;
// the #5676 enum failure of PostgreSQL ≤ 16 is not reproduced, since the
// bundled PostgreSQL 17 never showed it. The data migration does not run
// c45e397531d1's model-cache move on the copy.
//
// Environment:
//
//	GPUSTACK_DATABASE_URL             v2: the external PostgreSQL or MySQL (also read by `gpustack emulator …`)
//	GPUSTACK_EMULATOR_RELEASE         release to emulate ("v0.5.1", "0.3.0", "v0.6.0rc1", "main", "v2.2.3")
//	GPUSTACK_EMULATOR_GIT_COMMIT      commit reported (first 7 chars; default e3b0c44)
//	GPUSTACK_EMULATOR_STARTUP_DELAY   Go duration to wait before migrating (a worker: before it
//	                                  listens and registers)
//	GPUSTACK_EMULATOR_DEV_REVISION    dev image: stamp this id after e6bf9e067296, start healthy
//	GPUSTACK_EMULATOR_FAIL_MIGRATION  revision id or "any": SQLite: half-apply it, do not stamp,
//	                                  fail; v2: fail there and roll the whole run back (PostgreSQL),
//	                                  or keep what ran, at the previous stamp (MySQL, #3202)
//	GPUSTACK_EMULATOR_HEALTH=fail     migrate, then answer /healthz and /readyz with 503 (a worker:
//	                                  register and send heartbeats, but answer 503)
//	GPUSTACK_EMULATOR_EXIT_AFTER      Go duration: exit 1 that long after listening
//	GPUSTACK_EMULATOR_FAIL_DATA_MIGRATION=copy        v2: fail midway through the copy (no
//	                                  done-file; the first tables are already in PostgreSQL)
//	GPUSTACK_EMULATOR_FAIL_DATA_MIGRATION=after-done  v2: write the done-file, then fail the
//	                                  upgrade to head; a restart skips the migration (#3575)
//	GPUSTACK_EMULATOR_V2_GAP_5774=1   v2: 8bf38a6bb3b5 creates model_usage_details(_archive)
//	                                  without `completed`, as v2.2.0rc1–rc3 did
//	GPUSTACK_EMULATOR_HEARTBEAT_INTERVAL  v2 worker: heartbeat (and registration retry) period (30 s)
//	GPUSTACK_EMULATOR_ADMIN_API_KEY   v2 server: the Bearer key of GET/PUT /v2/workers
//	GPUSTACK_WORKER_HEARTBEAT_GRACE_PERIOD           v2 server: seconds to NOT_READY (150)
//	GPUSTACK_MODEL_INSTANCE_RESCHEDULE_GRACE_PERIOD  v2 server: seconds more to deleting instances (300)
//
// Test-only: GPUSTACK_EMULATOR_PG_BIN (PostgreSQL's bin dir),
// GPUSTACK_EMULATOR_PG_SOCKET_DIR and GPUSTACK_EMULATOR_PG_UID (UID:GID) let
// the unit tests run the v2 start-up on a host's PostgreSQL;
// GPUSTACK_EMULATOR_TEST_MYSQL_URL (a user that may create databases)
// gives the MySQL tests a server, else they use the host's mariadbd or skip.
package emulator
