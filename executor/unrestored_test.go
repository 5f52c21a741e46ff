package executor

import (
	"errors"
	"strings"
	"testing"
)

// TestUnrestoredWhenGoingBackFails: a failed upgrade whose rollback fails
// too (here the engine refuses to remove the failed container) is marked
// Unrestored, so that apply exits 4 whatever the failure's kind; one that
// went back is not.
func TestUnrestoredWhenGoingBackFails(t *testing.T) {
	zero := int64(0)
	for _, tt := range []struct {
		name       string
		removeErr  map[string]error
		unrestored bool
	}{
		{"rolled back", nil, false},
		{"rollback failed", map[string]error{"c2": errors.New("engine gone")}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpgrade(t, nil)
			u.f.behaviors[newRef] = behavior{exit: &zero}
			u.f.removeErr = tt.removeErr
			results, err := u.apply(t)
			if err == nil || len(results) != 1 {
				t.Fatalf("Apply = %v, %+v; want a failure", err, results)
			}
			res := results[0]
			if res.Unrestored != tt.unrestored || res.RolledBack == tt.unrestored {
				t.Errorf("RolledBack %v, Unrestored %v; want Unrestored %v (error: %v)", res.RolledBack, res.Unrestored, tt.unrestored, err)
			}
			if tt.unrestored && !strings.Contains(err.Error(), "rollback failed") {
				t.Errorf("error %q does not say the rollback failed", err)
			}
		})
	}
}
