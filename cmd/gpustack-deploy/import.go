package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/importer"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

func runImport(ctx context.Context, s stdio, args []string) int {
	var (
		c         common
		container string
		name      string
		out       string
		force     bool
	)
	fs := newFlagSet("import", "Describe a GPUStack container started by hand (docker run …) as a deployment file, and adopt it\n"+
		"when the file reproduces it exactly, so that the next plan shows no change. Secrets are never written:\n"+
		"each becomes a sensitive variable. Exit 0 once the file is written and loads; the output says\n"+
		"whether the container was adopted.",
		"gpustack-deploy import --container gpustack -o gpustack.hcl", s)
	fs.StringVar(&container, "container", "", "name or ID of the container to describe (required)")
	fs.StringVar(&name, "name", "", "deployment name (default: from the container name, without gpustack-)")
	fs.StringVarP(&out, "out", "o", "gpustack.hcl", "file to write")
	fs.BoolVar(&force, "force", false, "overwrite the file when it exists")
	fs.StringVar(&c.dockerHost, "docker-host", "", "Docker daemon address (default: DOCKER_HOST, else the local socket)")
	fs.StringVar(&c.stateDir, "state-dir", "", "where the adoption is recorded (default: .gpustack-deploy next to the file)")
	fs.BoolVar(&c.noColor, "no-color", false, "no colors in diagnostics (NO_COLOR in the environment does the same)")
	if code, done := parse(fs, args, s); done {
		return code
	}
	if container == "" {
		return errorf(s, "--container is required: name the container to import (docker ps -a lists them)")
	}
	if filepath.Ext(out) != ".hcl" {
		return errorf(s, "--out %s: the file must end in .hcl to be read back", out)
	}
	if _, err := os.Stat(out); err == nil && !force {
		return errorf(s, "%s exists; choose another file with -o, or overwrite it with --force", out)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return errorf(s, "%v", err)
	}
	c.files = []string{out}

	eng, err := engine.Dial(ctx, config.DefaultHost, c.dockerHost)
	if err != nil {
		return errorf(s, "%v", err)
	}
	defer eng.Close()
	insp, err := eng.InspectFull(ctx, container)
	if err != nil {
		return errorf(s, "%v", err)
	}
	if insp == nil {
		return errorf(s, "no container named %q on the Docker host (docker ps -a lists them)", container)
	}
	in := importer.Input{Inspection: *insp, Name: name, Catalog: catalog.Default()}
	res, err := importer.Describe(in)
	if err != nil {
		return errorf(s, "import %s: %v", container, err)
	}
	if err := writeImported(out, res.File); err != nil {
		return errorf(s, "%v", err)
	}
	fmt.Fprintf(s.out, "Wrote %s: deployment %q for container %s.\n", out, res.Name, strings.TrimPrefix(insp.Container.Name, "/"))
	for _, w := range res.Warnings {
		fmt.Fprintf(s.out, "\nWARNING: %s\n", w)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(s.out, "\nNote: %s\n", n)
	}
	printSecrets(s, res)
	return adoptImported(s, &c, in, res)
}

// printSecrets says how to supply each secret, never its value.
func printSecrets(s stdio, res *importer.Result) {
	if len(res.Secrets) == 0 {
		return
	}
	fmt.Fprintf(s.out, "\nSecrets are not in the file. Give plan and apply each value, as it is in the container:\n")
	for _, name := range sortedNames(res.Secrets) {
		fmt.Fprintf(s.out, "  GPUSTACK_DEPLOY_VAR_%s=…   (the %s)\n", name, res.SecretSources[name])
	}
	fmt.Fprintf(s.out, "or --var %s=… on the command line.\n", sortedNames(res.Secrets)[0])
}

// adoptImported loads the written file with the container's secrets (in
// memory only) and records the adoption when the file describes the
// container exactly.
func adoptImported(s stdio, c *common, in importer.Input, res *importer.Result) int {
	out := c.files[0]
	desired, parser, diags := config.Load(c.files, config.Options{Vars: res.Secrets})
	if diags.HasErrors() {
		c.printDiags(s, parser, diags)
		return errorf(s, "%s does not load as written; correct it by hand, then run gpustack-deploy plan -f %s. The container was not adopted.", out, out)
	}
	d := desired.Deployments[0]
	diffs := importer.Verify(d, res.Head, in, res)
	if len(res.Unexpressed)+len(diffs) > 0 {
		fmt.Fprintf(s.out, "\nNot adopted: the file cannot describe the container exactly.\n")
		for _, u := range res.Unexpressed {
			fmt.Fprintf(s.out, "  - %s\n", u)
		}
		if len(diffs) > 0 {
			fmt.Fprintf(s.out, "The container the file describes differs in: %s.\n", strings.Join(diffs, "; "))
		}
		fmt.Fprintf(s.out, "gpustack-deploy plan -f %s will show the container replaced by the one the file describes.\n", out)
		return exitOK
	}
	running := spec.For(importer.AsRunning(d, res), res.Head)
	a := observe.Adoption{
		Deployment:  d.Name,
		ContainerID: in.Inspection.Container.ID,
		ConfigHash:  running.Hash(),
		Version:     d.ImageTag(),
		Revision:    res.Head,
		EnvKeys:     running.Labels[spec.LabelEnvKeys],
	}
	if err := observe.SaveAdoption(c.state(), a); err != nil {
		return errorf(s, "%v", err)
	}
	fmt.Fprintf(s.out, "\nAdopted: deployment %q now manages container %.12s (recorded in %s).\n", d.Name, a.ContainerID, c.state())
	if res.CacheSplit {
		fmt.Fprintf(s.out, "gpustack-deploy plan -f %s shows one change: the model cache moving to its own volume.\n", out)
	} else {
		fmt.Fprintf(s.out, "gpustack-deploy plan -f %s shows no change.\n", out)
	}
	return exitOK
}

// writeFile writes a file readable by all (it holds no secret), through a
// temporary file renamed into place.
func writeImported(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
