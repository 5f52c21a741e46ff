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
// The cluster scenarios (cluster_test.go) run private dockerds of their own
// in a network namespace the test makes (daemons_test.go): each engine is a
// machine, their containers use host networking, so the namespace's
// 127.0.0.1 is the cluster's one network. gpustack-deploy runs inside that
// namespace (nsenter), and the test reads the server's records by exec; no
// bridge IP is used. The daemons and the namespace are removed afterwards.
//
// Without an engine the suite skips, unless CI=true: then it fails.
package e2e
