package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/spf13/pflag"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
)

// positional names the arguments a command takes besides flags.
var positional = map[string]string{"apply": " [SAVED-PLAN]", "restore": " BACKUP-ID", "help": " [COMMAND]", "completion": " bash|zsh|fish"}

// newFlagSet makes a command's flag set. Its help is the command's
// one-line summary (from commands()), about, the usage line, the
// examples (one per line, each a whole command) and every flag.
func newFlagSet(name, about, example string, s stdio) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(s.out, "gpustack-deploy %s: %s\n\n", name, summaryOf(name))
		if strings.TrimSuffix(about, ".") != summaryOf(name) {
			fmt.Fprintf(s.out, "%s\n\n", about)
		}
		// -h/--help is pflag's own; list it with the others, aligned.
		all := pflag.NewFlagSet(name, pflag.ContinueOnError)
		all.SortFlags = false
		all.AddFlagSet(fs)
		if all.Lookup("help") == nil {
			all.BoolP("help", "h", false, "show this help")
		}
		fmt.Fprintf(s.out, "Usage:\n  gpustack-deploy %s%s [flags]\n\nExamples:\n  %s\n\nFlags:\n%s", name, positional[name], example, all.FlagUsages())
	}
	return fs
}

// summaryOf is the one-line summary of a command.
func summaryOf(name string) string {
	for _, c := range commands() {
		if c.name == name {
			return c.summary
		}
	}
	return ""
}

// parse parses flags; done is true when the command must return code now.
// With s.describe set it hands the flag set over and parses nothing.
func parse(fs *pflag.FlagSet, args []string, s stdio) (code int, done bool) {
	if s.describe != nil {
		s.describe(fs)
		return exitOK, true
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK, true
		}
		return exitError, true
	}
	return exitOK, false
}

// common are the flags every command that reads the files shares.
type common struct {
	files      []string
	vars       []string
	dockerHost string
	stateDir   string
	noColor    bool
}

func (c *common) register(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&c.files, "file", "f", nil, "configuration file or directory of .hcl files (repeatable; default gpustack.hcl)")
	fs.StringArrayVar(&c.vars, "var", nil, "set a variable: --var name=value (repeatable); GPUSTACK_DEPLOY_VAR_<name> also works")
	fs.StringVar(&c.dockerHost, "docker-host", "", "Docker daemon address (default: DOCKER_HOST, else the local socket)")
	fs.StringVar(&c.stateDir, "state-dir", "", "where locks and journals live (default: .gpustack-deploy next to the first file)")
	fs.BoolVar(&c.noColor, "no-color", false, "no colors in diagnostics (NO_COLOR in the environment does the same)")
}

// loaded is a validated configuration with what is needed to print about it.
type loaded struct {
	desired *config.Desired
	parser  *hclparse.Parser
	catalog *catalog.Catalog
}

func (c *common) paths() []string {
	if len(c.files) == 0 {
		return []string{"gpustack.hcl"}
	}
	return c.files
}

// load reads and validates the files, printing every diagnostic.
func (c *common) load(s stdio) (*loaded, bool) {
	vars := map[string]string{}
	for _, kv := range c.vars {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			errorf(s, "--var %q: write --var name=value", kv)
			return nil, false
		}
		vars[name] = value
	}
	desired, parser, diags := config.Load(c.paths(), config.Options{Vars: vars, Environ: s.environ})
	c.printDiags(s, parser, diags)
	if diags.HasErrors() {
		return nil, false
	}
	cat := catalog.Default()
	if desired.CatalogFile != "" {
		extended, err := cat.WithFile(desired.CatalogFile)
		if err != nil {
			errorf(s, "%v", err)
			return nil, false
		}
		cat = extended
	}
	return &loaded{desired: desired, parser: parser, catalog: cat}, true
}

func (c *common) printDiags(s stdio, parser *hclparse.Parser, diags hcl.Diagnostics) {
	if len(diags) == 0 {
		return
	}
	// Diagnostics go to standard error: colour only when that is a terminal.
	color := !c.noColor && s.errTTY && !hasEnv(s.environ, "NO_COLOR")
	var files map[string]*hcl.File
	if parser != nil {
		files = parser.Files()
	}
	wr := hcl.NewDiagnosticTextWriter(s.err, files, 100, color)
	_ = wr.WriteDiagnostics(diags)
}

func hasEnv(environ []string, name string) bool {
	for _, kv := range environ {
		if k, v, _ := strings.Cut(kv, "="); k == name && v != "" {
			return true
		}
	}
	return false
}

// state is the directory for locks and journals.
func (c *common) state() string {
	if c.stateDir != "" {
		return c.stateDir
	}
	first := c.paths()[0]
	dir := first
	if st, err := os.Stat(first); err != nil || !st.IsDir() {
		dir = filepath.Dir(first)
	}
	return filepath.Join(dir, ".gpustack-deploy")
}

// connect opens one client per Docker host the deployments use.
func (c *common) connect(ctx context.Context, desired *config.Desired) (observe.Engines, func(), error) {
	engines := observe.Engines{}
	closeAll := func() {
		for _, e := range engines {
			e.Close()
		}
	}
	hosts := map[string]bool{}
	for _, d := range desired.Deployments {
		hosts[d.Host] = true
	}
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	for _, h := range names {
		endpoint := ""
		if h == config.DefaultHost {
			endpoint = c.dockerHost
		}
		e, err := engine.Dial(ctx, h, endpoint)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		engines[h] = e
	}
	return engines, closeAll, nil
}

// observe snapshots the deployments, counting containers adopted by
// `import` (recorded in the state directory) as managed.
func (c *common) observe(ctx context.Context, engines observe.Engines, deployments []config.Deployment, opts ...observe.Option) (*observe.Observed, error) {
	adoptions, err := observe.LoadAdoptions(c.state())
	if err != nil {
		return nil, err
	}
	return observe.Observe(ctx, engines, deployments, append(opts, observe.WithAdoptions(adoptions))...)
}

// replaceFlags are --replace and --yes-delete-volume.
type replaceFlags struct {
	replace []string
	yes     []string
}

func (r *replaceFlags) register(fs *pflag.FlagSet, confirm bool) {
	fs.StringArrayVar(&r.replace, "replace", nil, "fresh data volume for a deployment: --replace=NAME.data (or --replace=data with one deployment); the model cache is kept")
	if confirm {
		fs.StringArrayVar(&r.yes, "yes-delete-volume", nil, "confirm deleting this volume without being asked (repeatable; the name must match)")
	}
}

// deployments resolves --replace values to deployment names.
func (r *replaceFlags) deployments(desired *config.Desired) ([]string, error) {
	var out []string
	for _, v := range r.replace {
		name, what, found := strings.Cut(v, ".")
		if !found {
			name, what = "", v
		}
		if what != "data" {
			return nil, fmt.Errorf("--replace=%s: only the data volume can be replaced; write --replace=NAME.data", v)
		}
		if name == "" {
			if len(desired.Deployments) != 1 {
				return nil, fmt.Errorf("--replace=data: the files declare %d deployments; write --replace=NAME.data", len(desired.Deployments))
			}
			name = desired.Deployments[0].Name
		}
		out = append(out, name)
	}
	return out, nil
}

// confirm asks for a volume's name before it is deleted, unless
// --yes-delete-volume names it. --auto-approve does not answer this.
func (r *replaceFlags) confirm(s stdio) func(volume, detail string) bool {
	return func(volume, detail string) bool {
		for _, y := range r.yes {
			if y == volume {
				return true
			}
		}
		fmt.Fprintf(s.out, "\nVolume %s (%s) will be deleted; this cannot be undone.\nType the volume's name to delete it: ", volume, detail)
		line, ok := s.readLine()
		if !ok {
			fmt.Fprintln(s.out)
		}
		return ok && line == volume
	}
}
