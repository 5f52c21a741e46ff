package observe

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// Adoption records that a container made by hand (docker run) belongs to a
// deployment. `import` writes it once it has written a configuration that
// reproduces the container: it stands in for the labels the container
// lacks, which the Engine API cannot add to an existing container. It
// applies to that container only; once apply replaces the container, the
// new one carries real labels.
type Adoption struct {
	Deployment  string `json:"deployment"`
	ContainerID string `json:"container_id"`
	// ConfigHash is the hash of the container the imported configuration
	// describes, so that the next plan shows no change.
	ConfigHash string `json:"config_hash"`
	Version    string `json:"version"`
	Revision   string `json:"revision,omitempty"`
	// EnvKeys stands in for spec.LabelEnvKeys: the environment names the
	// file sets, comma-separated.
	EnvKeys string `json:"env_keys,omitempty"`
}

// Option adjusts an observation.
type Option func(*options)

type options struct {
	adoptions map[string]Adoption
	usage     map[string]bool
	tokens    map[string]bool
}

// WithServerTokens reads the registration token (as a digest) of the named
// servers, whose workers must hold the same one.
func WithServerTokens(servers ...string) Option {
	return func(o *options) {
		if o.tokens == nil {
			o.tokens = map[string]bool{}
		}
		for _, s := range servers {
			o.tokens[s] = true
		}
	}
}

// WithUsage measures the data and cache volumes of the named deployments
// (files and bytes), as a plan that deletes a volume must show them.
func WithUsage(deployments ...string) Option {
	return func(o *options) {
		if o.usage == nil {
			o.usage = map[string]bool{}
		}
		for _, d := range deployments {
			o.usage[d] = true
		}
	}
}

// WithAdoptions makes adopted containers count as managed.
func WithAdoptions(a map[string]Adoption) Option {
	return func(o *options) { o.adoptions = a }
}

func adoptionsDir(stateDir string) string { return filepath.Join(stateDir, "adopted") }

// LoadAdoptions reads the adoption records under stateDir, by deployment.
// A missing directory means none.
func LoadAdoptions(stateDir string) (map[string]Adoption, error) {
	entries, err := os.ReadDir(adoptionsDir(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read adoptions: %w", err)
	}
	out := map[string]Adoption{}
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(adoptionsDir(stateDir), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read adoption %s: %w", e.Name(), err)
		}
		var a Adoption
		if err := json.Unmarshal(data, &a); err != nil {
			return nil, fmt.Errorf("adoption %s: %w", e.Name(), err)
		}
		out[a.Deployment] = a
	}
	return out, nil
}

// SaveAdoption writes an adoption record (mode 0600, replaced atomically).
func SaveAdoption(stateDir string, a Adoption) error {
	dir := adoptionsDir(stateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save adoption: %w", err)
	}
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("save adoption: %w", err)
	}
	path := filepath.Join(dir, a.Deployment+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save adoption: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save adoption: %w", err)
	}
	return nil
}

// adopt marks ct as managed when an adoption record names it, giving it the
// labels the record stands in for.
func adopt(ct *Container, deployment string, adoptions map[string]Adoption) {
	a, ok := adoptions[deployment]
	if ct == nil || ct.Managed || !ok || a.ContainerID != ct.ID {
		return
	}
	labels := make(map[string]string, len(ct.Labels)+4)
	for k, v := range ct.Labels {
		labels[k] = v
	}
	labels[spec.LabelDeployment] = deployment
	labels[spec.LabelRole] = spec.RoleServer
	labels[spec.LabelConfigHash] = a.ConfigHash
	labels[spec.LabelVersion] = a.Version
	labels[spec.LabelRevision] = a.Revision
	labels[spec.LabelEnvKeys] = a.EnvKeys
	ct.Labels, ct.Managed = labels, true
}
