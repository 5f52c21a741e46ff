package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bigModelFiles fills <volume>/<dir> with 2 GiB of model-like files (eight
// 256 MiB weight shards and a config) and returns their sha256 listing.
func bigModelFiles(t testing.TB, volume, dir string) string {
	t.Helper()
	shellIn(t, volume, `set -e
m=/v/`+dir+`/huggingface/org/big-model
mkdir -p $m
dd if=/dev/urandom of=$m/model-00001-of-00008.safetensors bs=1M count=256 2>/dev/null
for i in 2 3 4 5 6 7 8; do
  cp $m/model-00001-of-00008.safetensors $m/model-0000$i-of-00008.safetensors
  printf 'shard %s' $i >> $m/model-0000$i-of-00008.safetensors
done
echo '{"architectures":["LlamaForCausalLM"]}' > $m/config.json`)
	return listing(t, volume, dir)
}

// TestAdoptSplitUpgradeRedeploy is the whole road for a deployment made by
// hand with the documented one-liner: one volume holding the database and
// 2 GiB of models → import → a plan that only splits the cache → split →
// upgrade v0.5.1 → v0.6.0 → fresh redeploy. The model files come through
// byte for byte, and GPUStack finds them without downloading anything.
func TestAdoptSplitUpgradeRedeploy(t *testing.T) {
	needToolbox(t)
	if testing.Short() {
		t.Skip("moves 2 GiB of model files")
	}
	t.Parallel()
	d := newDeployment(t, "journey", options{version: "v0.5.1"})
	cacheVolume := d.data + "-cache"
	secret := "pw-" + randomHex(12)
	d.startByHand(secret)
	rows := d.seed("--models", "4", "--instances", "2", "--users", "3")
	models := bigModelFiles(t, d.data, "cache")

	file := filepath.Join(d.dir, "imported.hcl")
	expectCode(t, d.run("import", "--container", d.container, "--name", d.name, "-o", file), 0)
	d.env = []string{"GPUSTACK_DEPLOY_VAR_gpustack_bootstrap_password=" + secret}
	r := d.run("plan", "-f", file, "--json")
	expectCode(t, r, 0)
	expectOnlyCacheSplit(t, r.stdout, cacheVolume)

	// Split.
	r = d.run("apply", "-f", file, "--auto-approve")
	expectCode(t, r, 0)
	expectOutput(t, r, "copied 9 model files", "removed the old copy of the model cache")
	if got := listing(t, cacheVolume, "."); got != models {
		t.Fatalf("after the split the cache volume holds:\n%s\nwant\n%s", got, models)
	}
	if left := strings.TrimSpace(listing(t, d.data, "cache")); left != "" {
		t.Errorf("the data volume still holds model files:\n%s", left)
	}
	expectRowsKept(t, rows, d.rows())
	expectCode(t, d.run("plan", "-f", file, "--detailed-exitcode"), 0)

	// Upgrade.
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), `"v0.5.1"`) {
		t.Fatalf("the imported file does not pin v0.5.1:\n%s", text)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(text), `"v0.5.1"`, `"v0.6.0"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	expectCode(t, d.run("apply", "-f", file, "--auto-approve"), 0)
	got := d.rows()
	for _, table := range []string{"models", "users"} {
		if got[table] != rows[table] {
			t.Errorf("%s: %d rows after the upgrade, want %d", table, got[table], rows[table])
		}
	}

	// Fresh redeploy: the database starts again, the models stay.
	r = d.run("apply", "-f", file, "--auto-approve", "--replace=data", "--yes-delete-volume="+d.data)
	expectCode(t, r, 0)
	expectOutput(t, r, "the model cache "+cacheVolume+" is kept: 9 files, 2.0 GiB")
	if got := d.rows(); got["models"] != 0 {
		t.Errorf("the fresh database holds %d models", got["models"])
	}
	if got := listing(t, cacheVolume, "."); got != models {
		t.Errorf("after the fresh redeploy the cache volume holds:\n%s\nwant\n%s", got, models)
	}
	if files, dir := d.emulatorInfo(); files != 9 || dir != "/var/lib/gpustack-cache" {
		t.Errorf("GPUStack finds %d files in %s, want the 9 model files in /var/lib/gpustack-cache", files, dir)
	}
}
