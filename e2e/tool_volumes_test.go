package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/volume"

	"github.com/gpustack-deploy/gpustack-deploy/engine"
)

// TestToolContainersLeaveNoVolumes: GPUStack's v2 image declares VOLUME
// /var/lib/gpustack, so every one-off container of it that mounts nothing
// there gets an anonymous volume. The tool containers gpustack-deploy runs
// (reads of a stopped or external database, dumps, restores) must take
// theirs with them. Not parallel: it compares the engine's volume list
// before and after, which no other test changes meanwhile.
func TestToolContainersLeaveNoVolumes(t *testing.T) {
	needPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng, err := engine.Dial(ctx, "default", "")
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	names := func() map[string]bool {
		list, err := docker.VolumeList(ctx, volume.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, v := range list.Volumes {
			out[v.Name] = true
		}
		return out
	}
	before := names()
	res, err := eng.RunTool(ctx, engine.Tool{Image: repository + ":v2.2.3", Deployment: "e2e-tool-volumes", Script: "test -d /var/lib/gpustack"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("tool container: %v, exit %d: %s", err, res.ExitCode, res.Stderr)
	}
	for name := range names() {
		if !before[name] {
			t.Errorf("volume %s was left behind by a tool container", name)
		}
	}
}
