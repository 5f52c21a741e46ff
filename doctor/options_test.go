package doctor

import (
	"reflect"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

func TestRestoreCandidate(t *testing.T) {
	failing := ctr("gpustack-demo", "gpustack/gpustack:main-cpu", "exited", 0, true)
	backups := []backup.Manifest{ // newest first
		manifest("5-safety", "v0.6.0-cpu", "c45e397531d1", started.Add(time.Hour), false),
		manifest("4-after-failure", "v0.5.1-cpu", "e6bf9e067296", started.Add(time.Minute), true),
		manifest("3-dev", "main-cpu", "e6bf9e067296", started.Add(-time.Minute), true),
		manifest("2-rc", "v0.5.1rc1-cpu", "e6bf9e067296", started.Add(-2*time.Minute), true),
		manifest("1-release", "v0.5.1-cpu", "e6bf9e067296", started.Add(-time.Hour), true),
		manifest("0-dev-revision", "v0.5.1-cpu", "bc310a40a89b", started.Add(-2*time.Hour), true),
	}
	in := hcl(Input{Container: failing, LogTail: failedStart("no such column: model_instances.resolved_path"),
		Database: sqlite(t, "c45e397531d1", resolvedPathGone), Backups: backups}, "v0.5.1", "cpu")
	r := Diagnose(in, catalog.Default())
	if len(r.Options) == 0 || r.Options[0].Kind != KindRestore {
		t.Fatalf("options = %+v, want a restore first", r.Options)
	}
	if want := "gpustack-deploy restore 1-release -f gpustack.hcl"; !contains(r.Options[0].Commands, want) {
		t.Errorf("restore commands = %q, want %q: the newest backup before the failure, taken at a release", r.Options[0].Commands, want)
	}
	if want := `# in gpustack.hcl set version = "v0.5.1" and variant = "cpu"`; contains(r.Options[0].Commands, want) {
		t.Errorf("the file already says v0.5.1-cpu; commands = %q", r.Options[0].Commands)
	}

	// Without a known failure time the newest verified release backup wins.
	in.LogTail = nil
	r = Diagnose(in, catalog.Default())
	if want := "gpustack-deploy restore 4-after-failure -f gpustack.hcl"; !contains(r.Options[0].Commands, want) {
		t.Errorf("restore commands = %q, want %q", r.Options[0].Commands, want)
	}
}

func TestRedactArgs(t *testing.T) {
	got := redactArgs([]string{"--token", "abc", "--bootstrap-password=pw", "--port", "80", "--database-url", "postgres://u:p@h/db", "two words"})
	want := []string{"--token", hidden, "--bootstrap-password=" + hidden, "--port", "80", "--database-url", hidden, "'two words'"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("redactArgs = %q, want %q", got, want)
	}
}

func TestImageRef(t *testing.T) {
	for ref, want := range map[string][2]string{
		"gpustack/gpustack:v0.5.1-cpu":              {"gpustack/gpustack", "v0.5.1-cpu"},
		"localhost:5000/gpustack/gpustack":          {"localhost:5000/gpustack/gpustack", "latest"},
		"quay.io/gpustack/gpustack:latest":          {"quay.io/gpustack/gpustack", "latest"},
		"gpustack/gpustack@sha256:0123456789abcdef": {"gpustack/gpustack", ""},
	} {
		img := Image{Ref: ref}
		if img.Repository() != want[0] || img.Tag() != want[1] {
			t.Errorf("%s: repository %q tag %q, want %q %q", ref, img.Repository(), img.Tag(), want[0], want[1])
		}
	}
}
