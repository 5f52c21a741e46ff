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
	if _, takes := positional[fs.Name()]; !takes && fs.NArg() > 0 {
		// "backup prod" must not back up every deployment.
		return errorf(s, "%s takes no arguments, got %q; deployments are chosen with flags (see gpustack-deploy %s --help)", fs.Name(), fs.Args(), fs.Name()), true
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
	// full is every deployment of the files, whatever --target kept in
	// desired: a targeted server's workers are paused through its API.
	full    *config.Desired
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
	return &loaded{desired: desired, full: desired, parser: parser, catalog: cat}, true
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

// connect opens one client per Docker host the deployments use. Any host
// that cannot be reached is an error (all of them are named).
func (c *common) connect(ctx context.Context, desired *config.Desired) (observe.Engines, func(), error) {
	engines, closeAll, failed := c.connectAll(ctx, desired)
	if len(failed) > 0 {
		closeAll()
		return nil, nil, failed.err()
	}
	return engines, closeAll, nil
}

// hostFailures are the hosts that could not be reached, by name.
type hostFailures map[string]error

func (f hostFailures) names() []string {
	names := make([]string, 0, len(f))
	for h := range f {
		names = append(names, h)
	}
	sort.Strings(names)
	return names
}

func (f hostFailures) err() error {
	var errs []error
	for _, h := range f.names() {
		errs = append(errs, f[h])
	}
	return errors.Join(errs...)
}

// connectAll dials every host the deployments use, concurrently, and
// returns the clients of the hosts that answered and the errors of the
// others (each names its host and address).
func (c *common) connectAll(ctx context.Context, desired *config.Desired) (observe.Engines, func(), hostFailures) {
	hosts := map[string]bool{}
	for _, d := range desired.Deployments {
		hosts[d.Host] = true
	}
	type dialed struct {
		host string
		eng  *engine.Client
		err  error
	}
	results := make(chan dialed, len(hosts))
	for h := range hosts {
		go func() {
			e, err := c.dial(ctx, desired, h)
			results <- dialed{h, e, err}
		}()
	}
	engines := observe.Engines{}
	failed := hostFailures{}
	for range hosts {
		r := <-results
		if r.err != nil {
			failed[r.host] = r.err
			continue
		}
		engines[r.host] = r.eng
	}
	closeAll := func() {
		for _, e := range engines {
			e.Close()
		}
	}
	return engines, closeAll, failed
}

// dial connects to one host: a declared host block, or the environment
// (and --docker-host) for the implicit host "default".
func (c *common) dial(ctx context.Context, desired *config.Desired, name string) (*engine.Client, error) {
	h := desired.Host(name)
	if h == nil {
		return engine.Dial(ctx, name, c.dockerHost)
	}
	t := engine.Target{Endpoint: h.DockerHost}
	if h.TLS != nil {
		t.CAFile, t.CertFile, t.KeyFile = h.TLS.CA, h.TLS.Cert, h.TLS.Key
	}
	return engine.DialTarget(ctx, name, t)
}

// targetFlag is --target, on the commands that can be limited to some
// deployments.
type targetFlag struct{ names []string }

func (t *targetFlag) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&t.names, "target", nil, "only this deployment (repeatable; default all)")
}

// apply keeps only the targeted deployments in l; an unknown name is an error.
func (t *targetFlag) apply(l *loaded) error {
	if len(t.names) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, n := range t.names {
		want[n] = true
	}
	for _, d := range l.desired.Deployments {
		if want[d.Name] && d.IsWorker() {
			// A worker is planned with its server: its token and API
			// come from the server's deployment.
			want[d.Server] = true
		}
	}
	var kept []config.Deployment
	known := map[string]bool{}
	var all []string
	for _, d := range l.desired.Deployments {
		known[d.Name] = true
		all = append(all, d.Name)
		if want[d.Name] {
			kept = append(kept, d)
		}
	}
	for _, n := range t.names {
		if !known[n] {
			return fmt.Errorf("--target %s: no deployment is named so; the files declare %s", n, strings.Join(all, ", "))
		}
	}
	desired := *l.desired
	desired.Deployments = kept
	l.desired = &desired
	return nil
}

// onHosts is l with only the deployments whose host is in engines.
func (l *loaded) onHosts(engines observe.Engines) *loaded {
	desired := *l.desired
	desired.Deployments = nil
	for _, d := range l.desired.Deployments {
		if engines[d.Host] != nil {
			desired.Deployments = append(desired.Deployments, d)
		}
	}
	out := *l
	out.desired = &desired
	return &out
}

// observe snapshots the deployments, counting containers adopted by
// `import` (recorded in the state directory) as managed.
func (c *common) observe(ctx context.Context, engines observe.Engines, deployments []config.Deployment, opts ...observe.Option) (*observe.Observed, error) {
	adoptions, err := observe.LoadAdoptions(c.state())
	if err != nil {
		return nil, err
	}
	var servers []string
	for _, d := range deployments {
		if d.IsWorker() {
			servers = append(servers, d.Server)
		}
	}
	opts = append(opts, observe.WithAdoptions(adoptions), observe.WithServerTokens(servers...))
	return observe.Observe(ctx, engines, deployments, opts...)
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
		if d := desired.Deployment(name); d != nil && d.IsWorker() {
			return nil, fmt.Errorf("--replace=%s: %s is a worker; its data volume is its identity (worker_uuid, worker_name), not a database to start afresh. To register it anew, destroy it and apply again", v, name)
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
