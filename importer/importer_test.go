package importer

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixture is a case: what docker inspect and docker image inspect print
// (trimmed), captured from containers made with docker run and edited
// where this host cannot make them (GPUs, the nvidia runtime, v2 tags).
type fixture struct {
	Container container.InspectResponse `json:"container"`
	Image     *image.InspectResponse    `json:"image"`
}

// secretValues are the secret values the fixtures hold; none may be written.
var secretValues = []string{"fixture-s3cret", "fixture-tok3n"}

func loadFixture(t *testing.T, path string) Input {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return Input{Inspection: engine.Inspection{Container: f.Container, Image: f.Image}}
}

// TestGolden describes each fixture, loads the file it writes with the
// secrets it returns, and verifies it against the container. The golden
// file holds the HCL, then the report: everything but secret values.
func TestGolden(t *testing.T) {
	cases, _ := filepath.Glob("testdata/*.json")
	if len(cases) < 6 {
		t.Fatalf("%d cases in testdata", len(cases))
	}
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			in := loadFixture(t, path)
			res, err := Describe(in)
			if err != nil {
				t.Fatal(err)
			}
			got := string(res.File) + "\n---\n" + report(t, in, res)
			for _, s := range secretValues {
				if strings.Contains(got, s) {
					t.Errorf("the secret %q is written:\n%s", s, got)
				}
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./importer -update creates it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, golden, got, want)
			}
		})
	}
}

// report loads the file as import does and renders what import tells.
func report(t *testing.T, in Input, res *Result) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "gpustack.hcl")
	if err := os.WriteFile(file, res.File, 0o644); err != nil {
		t.Fatal(err)
	}
	if formatted := string(res.File); !strings.HasSuffix(formatted, "\n") {
		t.Error("the file does not end in a newline")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "deployment: %s\nhead: %q\ncache split: %t\n", res.Name, res.Head, res.CacheSplit)
	for _, name := range sortedKeys(res.Secrets) {
		fmt.Fprintf(&b, "secret: %s from %s\n", name, res.SecretSources[name])
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, u := range res.Unexpressed {
		fmt.Fprintf(&b, "unexpressed: %s\n", u)
	}
	desired, _, diags := config.Load([]string{file}, config.Options{Vars: res.Secrets})
	if diags.HasErrors() {
		for _, d := range diags {
			fmt.Fprintf(&b, "load: %s: %s\n", d.Summary, d.Detail)
		}
		return b.String()
	}
	d := desired.Deployments[0]
	for _, v := range d.Args {
		if v.Sensitive && !isSecret(v.S, res) {
			t.Errorf("argument %s is sensitive but holds no secret", v)
		}
	}
	diffs := Verify(d, res.Head, in, res)
	fmt.Fprintf(&b, "verify: %s\n", strings.Join(append([]string{fmt.Sprint(len(diffs))}, diffs...), "; "))
	return b.String()
}

func isSecret(s string, res *Result) bool {
	for _, v := range res.Secrets {
		if strings.Contains(s, v) {
			return true
		}
	}
	return false
}

func TestDescribeRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(in *Input)
		want   string
	}{
		{"managed", func(in *Input) { in.Inspection.Container.Config.Labels["io.gpustack-deploy.deployment"] = "prod" }, "already belongs to deployment"},
		{"digest", func(in *Input) { in.Inspection.Container.Config.Image = "gpustack/gpustack@sha256:abc" }, "pinned by digest"},
		{"unknown tag", func(in *Input) { in.Inspection.Container.Config.Image = "gpustack/gpustack:mine" }, "none of GPUStack's"},
		{"no data volume", func(in *Input) { in.Inspection.Container.Mounts = nil }, "is in no volume"},
		{"bad name", func(in *Input) { in.Name = "Prod!" }, "cannot name a deployment"},
	}
	for _, tt := range tests {
		in := loadFixture(t, "testdata/v051_one_liner.json")
		tt.change(&in)
		_, err := Describe(in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestDeploymentName(t *testing.T) {
	for in, want := range map[string]string{
		"gpustack": "gpustack", "gpustack-prod": "prod", "GPUStack_Server.1": "gpustack_server-1", "-x-": "x", "...": "server",
	} {
		if got := DeploymentName(in); got != want {
			t.Errorf("DeploymentName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestArgsAndEnvRoundTrip: whatever the container's arguments and
// environment hold (secrets in both forms, twice, HCL template syntax),
// the file loads back to exactly them.
func TestArgsAndEnvRoundTrip(t *testing.T) {
	in := loadFixture(t, "testdata/v051_one_liner.json")
	cfg := in.Inspection.Container.Config
	cfg.Cmd = []string{"--token=fixture-tok3n", "--api-key", "fixture-s3cret", "-t", "other-secret", "--token", "fixture-tok3n",
		"--system-reserved", `{"ram": 2, "${x}": "%{y}"}`, "--bootstrap-password=${not-a-ref}"}
	cfg.Env = append(cfg.Env, "HF_TOKEN=hf-secret", "WEIRD=a\"b${c}", "GPUSTACK_CACHE_DIR=/var/lib/gpustack/cache")
	res, err := Describe(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"fixture-tok3n", "fixture-s3cret", "other-secret", "hf-secret", "not-a-ref"} {
		if strings.Contains(string(res.File), s) {
			t.Errorf("the file holds the secret %q:\n%s", s, res.File)
		}
	}
	if got := strings.Join(sortedKeys(res.Secrets), ","); got != "api_key,bootstrap_password,gpustack_bootstrap_password,hf_token,token,token_2" {
		t.Errorf("variables %s", got)
	}
	file := filepath.Join(t.TempDir(), "gpustack.hcl")
	if err := os.WriteFile(file, res.File, 0o644); err != nil {
		t.Fatal(err)
	}
	desired, _, diags := config.Load([]string{file}, config.Options{Vars: res.Secrets})
	if diags.HasErrors() {
		t.Fatalf("%v\n%s", diags, res.File)
	}
	d := desired.Deployments[0]
	var args []string
	for _, a := range d.Args {
		args = append(args, a.S)
	}
	if strings.Join(args, " ") != strings.Join(cfg.Cmd, " ") {
		t.Errorf("args\n got %q\nwant %q", args, cfg.Cmd)
	}
	if d.Env["WEIRD"].S != "a\"b${c}" || d.Env["HF_TOKEN"].S != "hf-secret" || !d.Env["HF_TOKEN"].Sensitive {
		t.Errorf("env %+v", d.Env)
	}
	if _, ok := d.Env["GPUSTACK_CACHE_DIR"]; ok {
		t.Error("GPUSTACK_CACHE_DIR is kept; the cache volume says where the cache is")
	}
	if diffs := Verify(d, res.Head, in, res); strings.Join(diffs, ",") != "environment" {
		t.Errorf("verify: %v, want only the environment (GPUSTACK_CACHE_DIR dropped)", diffs)
	}
}
