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
package emulator
