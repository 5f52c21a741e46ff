// Package e2e is the end-to-end suite of gpustack-deploy: the real binary,
// built once, run as a process against the real Docker engine, on GPUStack
// emulator images built locally (nothing is pulled).
//
// Every test owns a temporary directory (HCL file, backups, state), names its
// containers, volumes and ports with a random suffix, reaches containers only
// through ports published on 127.0.0.1 or through exec, and removes what it
// created. The tests assert on real state: exit codes, rendered plans, the
// containers and volumes the engine reports, row counts read inside the
// container, and the backup directories on disk.
//
// Without an engine the suite skips, unless CI=true: then it fails.
package e2e
