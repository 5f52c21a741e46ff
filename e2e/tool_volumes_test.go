package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/engine"
)

// TestToolContainersLeaveNoVolumes: GPUStack's v2 image declares VOLUME
// /var/lib/gpustack, so a one-off container of it that mounts nothing
// there would get an anonymous volume on every run (reads of a stopped or
// external database, dumps, restores). Tool containers get a tmpfs there
// instead, which goes with them; a mount the tool asks for is kept.
func TestToolContainersLeaveNoVolumes(t *testing.T) {
	needPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng, err := engine.Dial(ctx, "default", "")
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	res, err := eng.RunTool(ctx, engine.Tool{Image: repository + ":v2.2.3", Deployment: "e2e-tool-volumes",
		Script: "grep ' /var/lib/gpustack ' /proc/mounts"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("tool container: %v, exit %d: %s", err, res.ExitCode, res.Stderr)
	}
	if got := string(res.Stdout); len(got) < 6 || got[:6] != "tmpfs " {
		t.Errorf("/var/lib/gpustack in a tool container is %q, want a tmpfs (no anonymous volume)", got)
	}
}
