// Package config turns gpustack-deploy's HCL files into a validated
// Desired value and hcl.Diagnostics.
//
// It owns the configuration language: the variable, catalog and gpustack
// blocks, their defaults, the resolution of variables (--var, environment,
// defaults) with sensitivity carried as cty marks, and every rule a file must
// satisfy on its own or together with the other files (names, ports, volumes
// and secrets claimed twice). Every problem is reported as an *hcl.Diagnostic
// pointing at the attribute or block that causes it, and all problems are
// collected rather than stopping at the first.
//
// It reads the release catalog to check versions and variants, but it must
// not talk to Docker, look at the machine's state (volumes, containers,
// images) or decide what to change: that is observe's and planner's job.
// Apart from reading the files it is given and an optional catalog file, it
// performs no I/O.
package config
