// Command buildimages builds GPUStack emulator images on the local Docker
// engine for the demo and the benchmarks, since no registry is reachable:
//
//	go run ./emulator/buildimages gpustack/gpustack:v0.5.1-cpu gpustack/gpustack:v0.6.0-cpu
//
// Each reference is built with the emulator standing in for that release:
// FROM scratch for the SQLite era, FROM the PostgreSQL base image for v2
// (gpustack/gpustack:v2.2.3; the base is made with debootstrap once per
// machine). Images already built from the current sources are kept.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/docker/docker/client"

	"github.com/gpustack-deploy/gpustack-deploy/emulator/image"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "buildimages:", err)
		os.Exit(1)
	}
}

func run(refs []string) error {
	if len(refs) == 0 {
		return fmt.Errorf("usage: buildimages REPO:TAG [REPO:TAG …]")
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	var specs []image.Spec
	for _, ref := range refs {
		i := strings.LastIndex(ref, ":")
		if i < 0 {
			return fmt.Errorf("%q: write REPO:TAG", ref)
		}
		s, err := image.SpecFor(ref[:i], ref[i+1:])
		if err != nil {
			return err
		}
		specs = append(specs, s)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	defer cli.Close()
	if err := image.Build(context.Background(), cli, root, specs...); err != nil {
		return err
	}
	for _, s := range specs {
		fmt.Printf("built %s (GPUStack %s emulator)\n", s.Ref, s.Release)
	}
	return nil
}
