package main

import (
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/executor"
)

func TestApplyExitCode(t *testing.T) {
	for _, tt := range []struct {
		name string
		res  executor.Result
		want int
	}{
		{"failed before any change", executor.Result{Failure: &executor.Failure{Kind: executor.FailAction}}, exitError},
		{"rolled back", executor.Result{Failure: &executor.Failure{Kind: executor.FailAction}, RolledBack: true}, exitRolledBack},
		// An engine error after the change (the daemon went away) and no
		// way back: not "nothing changed".
		{"changed, could not go back", executor.Result{Failure: &executor.Failure{Kind: executor.FailAction}, Unrestored: true}, exitBroken},
		{"clean-up failed after verification", executor.Result{Verified: true, Failure: &executor.Failure{Kind: executor.FailCleanup}}, exitError},
	} {
		if got := applyExitCode([]executor.Result{tt.res}); got != tt.want {
			t.Errorf("%s: exit %d, want %d", tt.name, got, tt.want)
		}
	}
}
