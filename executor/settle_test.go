package executor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/plan"
)

// TestSettleEndsAnApplyKilledInItsLastStep: an apply killed once its work
// was done leaves a stale lock and an unfinished journal, and the next
// apply plans nothing. Settle reports both and closes them, so that no
// later apply inherits that run's backup as its rollback target.
func TestSettleEndsAnApplyKilledInItsLastStep(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"locks/prod.lock":     `{"pid":4242,"host":"build-7","started":"2026-11-28T06:00:00Z"}`,
		"journal/prod.jsonl":  `{"event":"begin","target":"v0.6.0-cpu"}` + "\n" + `{"event":"done","step":0,"action":"back up database","detail":"B1"}` + "\n",
		"locks/staging.lock":  "", // released
		"journal/other.jsonl": `{"event":"begin","target":"v0.6.0-cpu"}` + "\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	x := &Executor{StateDir: dir, Out: &out, Now: func() time.Time { return now }}
	p := &plan.Plan{Deployments: []plan.Deployment{{Name: "prod"}, {Name: "staging"}, {Name: "changing", Actions: []plan.Action{{Kind: plan.ActionVerify}}}}}
	x.Settle(p)
	for _, want := range []string{"prod: cleared a stale lock left by pid 4242 on build-7", "prod: the previous apply was interrupted (apply to v0.6.0-cpu began"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "staging") || strings.Contains(out.String(), "changing") {
		t.Errorf("Settle touched a deployment with a released lock or pending changes:\n%s", out.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "locks", "prod.lock")); len(b) != 0 {
		t.Errorf("lock file after Settle: %s", b)
	}
	j, interrupted, err := OpenJournal(dir, "prod", x.Now)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if interrupted != nil {
		t.Errorf("after Settle the journal still reports %+v", interrupted)
	}
	// A running apply's lock is left alone.
	held, err := AcquireLock(dir, "prod", now)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	out.Reset()
	x.Settle(p)
	if out.Len() != 0 {
		t.Errorf("Settle reported on a held lock:\n%s", out.String())
	}
}
