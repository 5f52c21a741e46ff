package e2e

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestSavedPlan(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "saved", options{version: "v0.4.1"})
	expectCode(t, d.gsd("apply", "--auto-approve"), 0)
	saved := filepath.Join(d.dir, "upgrade.plan")

	r := d.gsd("plan", "--var", "version=v0.5.1", "--out", saved)
	expectCode(t, r, 0)
	expectOutput(t, r, "Saved the plan to "+saved)
	expectMode(t, saved, 0o600)

	// What runs changes between plan and apply.
	if err := docker.ContainerStop(context.Background(), d.container, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	stopped := d.mustInspect()
	r = d.run("apply", saved, "--var", "version=v0.5.1")
	expectCode(t, r, 1)
	expectOutput(t, r, "the saved plan no longer applies", "Nothing was changed.")
	d.expectUnchanged(stopped)
	if b := d.backupList(); len(b) != 0 {
		t.Errorf("a stale saved plan took backups: %+v", b)
	}

	r = d.gsd("plan", "--var", "version=v0.5.1", "--out", saved)
	expectCode(t, r, 0)
	expectMode(t, saved, 0o600)
	// Other variables than at plan time: refused as well.
	r = d.run("apply", saved)
	expectCode(t, r, 1)
	expectOutput(t, r, "the saved plan no longer applies")
	d.expectUnchanged(stopped)

	r = d.run("apply", saved, "--var", "version=v0.5.1")
	expectCode(t, r, 0)
	expectOutput(t, r, "applied and verified")
	d.expectRunning("v0.5.1-cpu", head051)
	if b := d.backupList(); len(b) != 1 || !b[0].Verified || b[0].Revision != head041 {
		t.Errorf("backups after applying the saved upgrade: %+v, want one verified at %s", b, head041)
	}
}

func expectMode(t testing.TB, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Errorf("%s has mode %v, want %v", path, st.Mode().Perm(), want)
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "secret", options{
		version:   "v0.4.1",
		variables: `variable "pw" { sensitive = true }`,
		body:      `  env = { GPUSTACK_BOOTSTRAP_PASSWORD = var.pw }`,
	})
	secret, rotated := "pw-"+randomHex(12), "pw-"+randomHex(12)
	d.env = []string{"GPUSTACK_DEPLOY_VAR_pw=" + secret}
	saved := filepath.Join(d.dir, "install.plan")

	var runs []result
	step := func(code int, args ...string) {
		t.Helper()
		r := d.gsd(args[0], args[1:]...)
		expectCode(t, r, code)
		runs = append(runs, r)
	}
	step(0, "validate")
	step(2, "plan", "--detailed-exitcode")
	step(0, "plan", "--json")
	step(0, "plan", "--out", saved)
	runs = append(runs, d.run("apply", saved))
	expectCode(t, runs[len(runs)-1], 0)
	step(0, "status", "--json")
	step(2, "plan", "--detailed-exitcode", "--var", "version=v0.5.1")
	step(0, "apply", "--auto-approve", "--var", "version=v0.5.1")
	step(0, "backups", "--json")
	expectEnv(t, d.mustInspect(), "GPUSTACK_BOOTSTRAP_PASSWORD", secret)

	// A new password: the plan sees the change without showing either value.
	d.env = []string{"GPUSTACK_DEPLOY_VAR_pw=" + rotated}
	step(2, "plan", "--detailed-exitcode", "--var", "version=v0.5.1")
	step(0, "plan", "--json", "--var", "version=v0.5.1")
	step(0, "apply", "--auto-approve", "--var", "version=v0.5.1")
	step(0, "status", "--json")
	ct := d.expectRunning("v0.5.1-cpu", head051)
	expectEnv(t, ct, "GPUSTACK_BOOTSTRAP_PASSWORD", rotated)

	for _, s := range []string{secret, rotated} {
		for _, r := range runs {
			if strings.Contains(r.output(), s) {
				t.Errorf("a secret leaked into the output:\n%s", r.output())
			}
		}
		for k, v := range ct.Config.Labels {
			if strings.Contains(v, s) {
				t.Errorf("a secret leaked into container label %s", k)
			}
		}
		if slices.ContainsFunc(ct.Args, func(a string) bool { return strings.Contains(a, s) }) {
			t.Errorf("a secret leaked into the container's arguments %v", ct.Args)
		}
	}

	// Every file gpustack-deploy wrote (the databases in the backups hold
	// GPUStack's own data and are not ours to judge).
	kinds := map[string]bool{}
	err := filepath.WalkDir(d.dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Name() == "database.db" || path == d.file {
			return err
		}
		rel, _ := filepath.Rel(d.dir, path)
		switch {
		case strings.HasPrefix(rel, "state/journal/"):
			kinds["journal"] = true
		case strings.HasPrefix(rel, "state/locks/"):
			kinds["lock"] = true
		case e.Name() == "manifest.json":
			kinds["manifest"] = true
		case path == saved:
			kinds["saved plan"] = true
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range []string{secret, rotated} {
			if strings.Contains(string(b), s) {
				t.Errorf("a secret leaked into %s", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"journal", "lock", "manifest", "saved plan"} {
		if !kinds[k] {
			t.Errorf("no %s file was found under %s: the search proves less than it should", k, d.dir)
		}
	}
}

// expectEnv checks that the container's environment sets name to value.
func expectEnv(t testing.TB, ct *container.InspectResponse, name, value string) {
	t.Helper()
	if !slices.Contains(ct.Config.Env, name+"="+value) {
		t.Errorf("container %s: %s is not set to the value given (env has %d entries)", ct.Name, name, len(ct.Config.Env))
	}
}
