package spec

import (
	"slices"
	"strings"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/config"
)

func base() config.Deployment {
	return config.Deployment{
		Name: "prod", Version: "v0.5.1", Variant: "cpu", Image: "gpustack/gpustack", ContainerName: "gpustack-prod",
		Port: 8080, ContainerPort: 80, ListenAddress: "0.0.0.0", Restart: "unless-stopped",
		Args: []config.Value{{S: "--disable-worker"}},
		Env: map[string]config.Value{
			"GPUSTACK_DEBUG":              {S: "false"},
			"GPUSTACK_BOOTSTRAP_PASSWORD": {S: "s3cret", Sensitive: true},
		},
		Data:  config.Volume{Name: "prod-data", Path: DataDir},
		Cache: &config.Volume{HostPath: "/srv/cache", Path: "/var/lib/gpustack-cache"},
	}
}

func TestForBuildsTheContainer(t *testing.T) {
	c := For(base(), "e6bf9e067296")
	if c.Image != "gpustack/gpustack:v0.5.1-cpu" {
		t.Errorf("image %q", c.Image)
	}
	if got := strings.Join(c.ArgStrings(), " "); got != "--disable-worker --cache-dir /var/lib/gpustack-cache" {
		t.Errorf("args %q: a v0.x cache outside the data dir must be passed as --cache-dir", got)
	}
	if got := strings.Join(c.EnvStrings(), " "); got != "GPUSTACK_BOOTSTRAP_PASSWORD=s3cret GPUSTACK_DEBUG=false" {
		t.Errorf("env %q: want sorted NAME=value", got)
	}
	if len(c.Mounts) != 2 || c.Mounts[0].Source() != "prod-data" || c.Mounts[0].Target != DataDir || c.Mounts[1].Source() != "/srv/cache" {
		t.Errorf("mounts %+v", c.Mounts)
	}
	for k, want := range map[string]string{LabelDeployment: "prod", LabelRole: RoleServer, LabelVersion: "v0.5.1-cpu", LabelRevision: "e6bf9e067296", LabelEnvKeys: "GPUSTACK_BOOTSTRAP_PASSWORD,GPUSTACK_DEBUG"} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	if len(c.Hash()) != 16 {
		t.Errorf("hash %q", c.Hash())
	}
	if strings.Contains(c.Describe(), "s3cret") {
		t.Error("Describe must not reveal sensitive values")
	}
}

func TestV2CacheInsideDataDirIsNotPassedAsFlag(t *testing.T) {
	d := base()
	d.Version, d.Variant = "v2.2.3", ""
	d.Cache.Path = "/var/lib/gpustack/cache"
	if got := strings.Join(For(d, "").ArgStrings(), " "); got != "--disable-worker" {
		t.Errorf("args %q", got)
	}
}

func TestHashIsStableAndSensitiveToEveryField(t *testing.T) {
	ref := For(base(), "e6bf9e067296").Hash()
	for i := 0; i < 50; i++ {
		if h := For(base(), "e6bf9e067296").Hash(); h != ref {
			t.Fatalf("hash changed between identical calls: %s vs %s", h, ref)
		}
	}
	changes := map[string]func(d *config.Deployment){
		"version":   func(d *config.Deployment) { d.Version = "v0.6.0" },
		"arg":       func(d *config.Deployment) { d.Args = nil },
		"env value": func(d *config.Deployment) { d.Env["GPUSTACK_DEBUG"] = config.Value{S: "true"} },
		"secret value": func(d *config.Deployment) {
			d.Env["GPUSTACK_BOOTSTRAP_PASSWORD"] = config.Value{S: "other", Sensitive: true}
		},
		"port":        func(d *config.Deployment) { d.Port = 8081 },
		"listen":      func(d *config.Deployment) { d.ListenAddress = "127.0.0.1" },
		"data volume": func(d *config.Deployment) { d.Data.Name = "other" },
		"cache":       func(d *config.Deployment) { d.Cache = nil },
		"restart":     func(d *config.Deployment) { d.Restart = "always" },
		"user label":  func(d *config.Deployment) { d.Labels = map[string]string{"team": "ml"} },
	}
	for name, change := range changes {
		d := base()
		d.Env = map[string]config.Value{}
		for k, v := range base().Env {
			d.Env[k] = v
		}
		change(&d)
		if For(d, "e6bf9e067296").Hash() == ref {
			t.Errorf("changing %s does not change the hash", name)
		}
	}
}

func TestLabelsReserved(t *testing.T) {
	if !LabelsReserved(LabelConfigHash) || LabelsReserved("team") || LabelsReserved("io.gpustack") {
		t.Error("LabelsReserved misclassifies")
	}
}

func TestWithDataMigration(t *testing.T) {
	d := base()
	c := For(d, "c4d7e8f9a0b1")
	for _, legacy := range []bool{false, true} {
		m := WithDataMigration(c, legacy)
		want := EnvDataMigration + "=true"
		if legacy {
			want = EnvMigrationDataDir + "=" + DataDir
		}
		if !slices.Contains(m.EnvStrings(), want) {
			t.Errorf("legacy=%v: env %v lacks %s", legacy, m.EnvStrings(), want)
		}
		if m.Hash() == c.Hash() {
			t.Errorf("legacy=%v: the hash did not change with the switch", legacy)
		}
		if !strings.Contains(m.Labels[LabelEnvKeys], strings.SplitN(want, "=", 2)[0]) {
			t.Errorf("legacy=%v: env-keys label %q lacks the switch", legacy, m.Labels[LabelEnvKeys])
		}
		if slices.Contains(c.EnvStrings(), want) || c.Labels[LabelEnvKeys] == m.Labels[LabelEnvKeys] {
			t.Errorf("legacy=%v: the base container was changed", legacy)
		}
	}
}

// TestDatabaseURL: database_url reaches the container as
// GPUSTACK_DATABASE_URL, changes the hash when it changes, and shows in
// no label or description.
func TestDatabaseURL(t *testing.T) {
	const url = "postgresql://gpustack:pw-one@db.example/gpustack"
	d := base()
	d.Version, d.Variant, d.Cache = "v2.2.3", "", nil
	plain := For(d, "c4d7e8f9a0b1")
	d.DatabaseURL, d.DatabaseScheme = config.Value{S: url, Sensitive: true}, config.SchemePostgreSQL
	c := For(d, "c4d7e8f9a0b1")
	if !slices.Contains(c.EnvStrings(), EnvDatabaseURL+"="+url) {
		t.Fatalf("env %v lacks %s", c.EnvStrings(), EnvDatabaseURL)
	}
	for _, e := range c.Env {
		if e.Name == EnvDatabaseURL && !e.Value.Sensitive {
			t.Error("the URL must stay sensitive in the container's env")
		}
	}
	if got := c.Labels[LabelEnvKeys]; got != "GPUSTACK_BOOTSTRAP_PASSWORD,GPUSTACK_DATABASE_URL,GPUSTACK_DEBUG" {
		t.Errorf("env keys %q", got)
	}
	if c.Hash() == plain.Hash() {
		t.Error("adding database_url must change the hash")
	}
	d.DatabaseURL.S = "postgresql://gpustack:pw-two@db.example/gpustack"
	if For(d, "c4d7e8f9a0b1").Hash() == c.Hash() {
		t.Error("a new password in database_url must change the hash")
	}
	for k, v := range c.Labels {
		if strings.Contains(v, "pw-one") || strings.Contains(v, "db.example") {
			t.Errorf("label %s reveals the URL: %q", k, v)
		}
	}
	if strings.Contains(c.Describe(), "pw-one") {
		t.Errorf("Describe reveals the URL: %s", c.Describe())
	}
}

func TestContainerPortIsPassedAsPortFlag(t *testing.T) {
	d := base()
	if args := For(d, "").ArgStrings(); slices.Contains(args, "--port") {
		t.Errorf("the default container_port is passed: %v", args)
	}
	d.ContainerPort = 8080
	args := For(d, "").ArgStrings()
	i := slices.Index(args, "--port")
	if i < 0 || i+1 >= len(args) || args[i+1] != "8080" {
		t.Errorf("container_port 8080 is not passed as --port 8080: %v", args)
	}
	for _, given := range [][]config.Value{{{S: "--port"}, {S: "8080"}}, {{S: "--port=8080"}}} {
		d.Args = given
		if n := strings.Count(strings.Join(For(d, "").ArgStrings(), " "), "--port"); n != 1 {
			t.Errorf("args %v already say --port, got it %d times: %v", given, n, For(d, "").ArgStrings())
		}
	}
}
