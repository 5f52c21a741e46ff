package observe

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

func TestFingerprintFollowsWhatPlansDependOn(t *testing.T) {
	base := func() *Observed {
		return &Observed{Deployments: map[string]*Deployment{
			"a": {Name: "a", Host: "default", Container: &Container{ID: "c1", State: "running"}, Image: &Image{ID: "i1"},
				Data: &Volume{Source: "a-data"}, Database: Database{Status: DBRead, Revision: "e6bf9e067296", Tables: map[string][]string{"models": {"id"}}}},
			"b": {Name: "b", Host: "default", Database: Database{Status: DBAbsent}},
		}}
	}
	ref := base().Fingerprint()
	if got := base().Fingerprint(); got != ref {
		t.Fatalf("fingerprint not stable: %s vs %s", got, ref)
	}
	changes := map[string]func(o *Observed){
		"container":   func(o *Observed) { o.Deployments["a"].Container.ID = "c2" },
		"state":       func(o *Observed) { o.Deployments["a"].Container.State = "exited" },
		"image":       func(o *Observed) { o.Deployments["a"].Image.ID = "i2" },
		"revision":    func(o *Observed) { o.Deployments["a"].Database.Revision = "c45e397531d1" },
		"columns":     func(o *Observed) { o.Deployments["a"].Database.Tables["models"] = []string{"id", "env"} },
		"volume":      func(o *Observed) { o.Deployments["b"].Data = &Volume{Source: "b-data"} },
		"inline":      func(o *Observed) { o.Deployments["a"].InlineCache = &Usage{Files: 1} },
		"previous":    func(o *Observed) { o.Deployments["a"].Previous = &Container{ID: "p"} },
		"db unknown":  func(o *Observed) { o.Deployments["b"].Database = Database{Status: DBUnknown, Reason: "busy"} },
		"deployment+": func(o *Observed) { o.Deployments["c"] = &Deployment{Name: "c"} },
	}
	for name, change := range changes {
		o := base()
		change(o)
		if o.Fingerprint() == ref {
			t.Errorf("changing %s does not change the fingerprint", name)
		}
	}
	o := base()
	o.Deployments["a"].Container.Health = "unreachable"
	if o.Fingerprint() != ref {
		t.Error("health is a moment's answer and must not invalidate saved plans")
	}
}

func TestAdoptionsRoundTripAndAdopt(t *testing.T) {
	dir := t.TempDir()
	if got, err := LoadAdoptions(dir); err != nil || got != nil {
		t.Fatalf("no directory means no adoptions, got %v, %v", got, err)
	}
	a := Adoption{Deployment: "prod", ContainerID: "abc", ConfigHash: "0123456789abcdef", Version: "v0.5.1-cpu", Revision: "e6bf9e067296"}
	if err := SaveAdoption(dir, a); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "adopted", "prod.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("adoption file: %v, mode %v", err, st.Mode())
	}
	all, err := LoadAdoptions(dir)
	if err != nil || all["prod"].ContainerID != "abc" || all["prod"].ConfigHash != a.ConfigHash {
		t.Fatalf("LoadAdoptions = %+v, %v", all, err)
	}

	other := &Container{ID: "xyz", Labels: map[string]string{"team": "ml"}}
	adopt(other, "prod", all)
	if other.Managed {
		t.Error("a record adopts only the container it names")
	}
	ct := &Container{ID: "abc", Labels: map[string]string{"team": "ml"}}
	adopt(ct, "prod", all)
	if !ct.Managed || ct.Labels[spec.LabelConfigHash] != a.ConfigHash || ct.Labels[spec.LabelVersion] != a.Version || ct.Labels["team"] != "ml" {
		t.Errorf("adopted container: %+v", ct)
	}

	if err := os.WriteFile(filepath.Join(dir, "adopted", "broken.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAdoptions(dir); err == nil {
		t.Error("a damaged record must be reported, not ignored")
	}
}

func TestParseUsageAndSizes(t *testing.T) {
	u, err := parseUsage("9 2147483660\n")
	if err != nil || u.Files != 9 || u.Bytes != 2147483660 {
		t.Fatalf("parseUsage = %+v, %v", u, err)
	}
	for _, bad := range []string{"", "9", "x 1", "1 -", "1 2 3"} {
		if _, err := parseUsage(bad); err == nil {
			t.Errorf("parseUsage(%q) must fail", bad)
		}
	}
	if got := u.String(); got != "9 files, 2.0 GiB" {
		t.Errorf("String() = %q", got)
	}
	if got := (*Usage)(nil).String(); got != "size unknown" {
		t.Errorf("nil String() = %q", got)
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 81920: "80.0 KiB", 3 << 30: "3.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestMountsAtAndToolImages(t *testing.T) {
	ct := &Container{ImageID: "sha256:old", Mounts: []Mount{{Source: "d", Destination: spec.DataDir}}}
	if !MountsAt(ct, spec.DataDir) || MountsAt(ct, "/var/lib/gpustack-cache") || MountsAt(nil, spec.DataDir) {
		t.Error("MountsAt misreports")
	}
	od := &Deployment{Container: ct, Image: &Image{ID: "sha256:new"}}
	if got := ToolImages(od); len(got) != 2 || got[0] != "sha256:new" || got[1] != "sha256:old" {
		t.Errorf("ToolImages = %v, want the desired image first", got)
	}
	od.Image.ID = "sha256:old"
	if got := ToolImages(od); len(got) != 1 {
		t.Errorf("ToolImages lists an image twice: %v", got)
	}
	if got := ToolImages(&Deployment{}); len(got) != 0 {
		t.Errorf("ToolImages without images = %v", got)
	}
}
