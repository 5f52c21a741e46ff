// Package emulator is a stand-in for the GPUStack server of the SQLite era
// (0.1.1 … v0.7.1) at start-up, for end-to-end tests of gpustack-deploy.
//
// It owns the emulated behaviour only: its own SQLite migration scripts per
// Alembic revision (written from the project's fact sheet, not from
// GPUStack's code), the start-up sequence with era-specific logging and exit
// codes, the HTTP probes, the model-cache side effects of c45e397531d1, and
// fault injection through environment variables. It must not read the
// project's catalog: the end-to-end suite cross-checks the two on purpose.
//
// The binary built from cmd/gpustack-emulator is installed in images as
// /usr/local/bin/gpustack; package emulator/image builds those images.
//
// Commands:
//
//	gpustack start [flags]        the server start-up (unknown flags ignored)
//	gpustack version [--short]    "<version> (<commit7>)" or "<version>"
//	gpustack emulator rows        {"table": count, …} for every table
//	gpustack emulator seed --models N --instances M --users U
//	gpustack emulator sql STATEMENT   rows as JSON, or {"rows_affected": n}
//
// The emulator subcommands take --data-dir (default $GPUSTACK_DATA_DIR,
// then /var/lib/gpustack) and work while the server runs.
//
// Environment:
//
//	GPUSTACK_EMULATOR_RELEASE         release to emulate ("v0.5.1", "0.3.0", "v0.6.0rc1", "main")
//	GPUSTACK_EMULATOR_GIT_COMMIT      commit reported (first 7 chars; default e3b0c44)
//	GPUSTACK_EMULATOR_STARTUP_DELAY   Go duration to wait before migrating
//	GPUSTACK_EMULATOR_DEV_REVISION    dev image: stamp this id after e6bf9e067296, start healthy
//	GPUSTACK_EMULATOR_FAIL_MIGRATION  revision id or "any": half-apply it, do not stamp, fail
//	GPUSTACK_EMULATOR_HEALTH=fail     migrate, then answer /healthz and /readyz with 503
//	GPUSTACK_EMULATOR_EXIT_AFTER      Go duration: exit 1 that long after listening
package emulator
