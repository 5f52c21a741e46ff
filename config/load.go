package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// Options are the inputs of Load besides the files.
type Options struct {
	// Vars are values given with --var name=value.
	Vars map[string]string
	// Environ is the process environment (os.Environ()); an entry
	// GPUSTACK_DEPLOY_VAR_<name>=value supplies variable <name>. --var wins.
	Environ []string
	// Catalog is the release catalog; nil means catalog.Default().
	Catalog *catalog.Catalog
}

// Load parses every file (each must end in .hcl; a directory path means all
// *.hcl in it, sorted), validates all of it, and returns every problem found.
// Desired is nil only when the diagnostics hold an error; warnings are kept.
// The parser holds the sources, for printing diagnostics with snippets.
func Load(paths []string, opts Options) (*Desired, *hclparse.Parser, hcl.Diagnostics) {
	files, diags := readFiles(paths)
	d, parser, more := load(files, opts)
	diags = append(diags, more...)
	if diags.HasErrors() {
		return nil, parser, diags
	}
	return d, parser, diags
}

// source is one file's name and content.
type source struct {
	name string
	src  []byte
}

// readFiles expands directories and reads every file. A path given twice
// (also through its directory) is read once.
func readFiles(paths []string) ([]source, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	fail := func(summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail})
	}
	if len(paths) == 0 {
		fail("No configuration files", "Name one or more .hcl files or a directory that holds them.")
		return nil, diags
	}
	var names []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			fail("Cannot read configuration", fmt.Sprintf("%s. Check the path; give a .hcl file or a directory of them.", err))
			continue
		}
		if !info.IsDir() {
			if filepath.Ext(p) != ".hcl" {
				fail("Not an HCL file", fmt.Sprintf("%s does not end in .hcl. Rename it to end in .hcl, or name the directory that holds the .hcl files.", p))
				continue
			}
			names = append(names, p)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(p, "*.hcl"))
		if err != nil {
			fail("Cannot read configuration", err.Error())
			continue
		}
		if len(matches) == 0 {
			fail("No configuration files", fmt.Sprintf("Directory %s holds no .hcl file. Name a directory that holds the configuration, or the files themselves.", p))
			continue
		}
		sort.Strings(matches)
		names = append(names, matches...)
	}

	var out []source
	seen := map[string]bool{}
	for _, name := range names {
		key, err := filepath.Abs(name)
		if err != nil {
			key = name
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		src, err := os.ReadFile(name)
		if err != nil {
			fail("Cannot read configuration", fmt.Sprintf("%s. Check the file's permissions.", err))
			continue
		}
		out = append(out, source{name: name, src: src})
	}
	return out, diags
}

// load parses and validates sources that are already in memory.
func load(files []source, opts Options) (*Desired, *hclparse.Parser, hcl.Diagnostics) {
	parser := hclparse.NewParser()
	var diags hcl.Diagnostics
	order := map[string]int{}

	var variables []*variableBlock
	var catalogs []*catalogBlock
	var hostBlocks []*hostBlock
	type declared struct {
		block *deploymentBlock
		file  string
	}
	var blocks, workerBlocks []declared
	for i, f := range files {
		order[f.name] = i
		file, parseDiags := parser.ParseHCL(f.src, f.name)
		diags = append(diags, parseDiags...)
		if file == nil || file.Body == nil {
			continue
		}
		var body fileBody
		diags = append(diags, gohcl.DecodeBody(file.Body, nil, &body)...)
		variables = append(variables, body.Variables...)
		catalogs = append(catalogs, body.Catalogs...)
		hostBlocks = append(hostBlocks, body.Hosts...)
		for _, b := range body.Deployments {
			blocks = append(blocks, declared{b, f.name})
		}
		for _, b := range body.Workers {
			workerBlocks = append(workerBlocks, declared{b, f.name})
		}
	}

	ctx, varDiags := evalContext(variables, opts)
	diags = append(diags, varDiags...)
	eval := evaluator{ctx: ctx, diags: &diags}

	cat := opts.Catalog
	if cat == nil {
		cat = catalog.Default()
	}
	catalogFile, cat, extended := loadCatalog(catalogs, cat, eval)

	hosts := decodeHosts(hostBlocks, eval)
	var checked []*checkedDeployment
	for _, b := range blocks {
		if c := decodeDeployment(b.block, cat, extended, eval, RoleServer, nil); c != nil {
			resolveHost(c, b.block.Host, hosts, eval)
			checked = append(checked, c)
		}
	}
	servers := checked
	for _, b := range workerBlocks {
		server := findServer(b.block, servers, eval)
		if c := decodeDeployment(b.block, cat, extended, eval, RoleWorker, server); c != nil {
			resolveHost(c, b.block.Host, hosts, eval)
			checked = append(checked, c)
		}
	}
	resolveCluster(checked, hosts, eval)
	if len(blocks) == 0 && len(files) > 0 && !diags.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No deployment",
			Detail:   `The files declare no gpustack block. Add one, for example gpustack "main" { version = "v2.2.3" volume "data" { name = "gpustack-data" } }.`,
		})
	}
	checkConflicts(checked, &diags)

	sortDiagnostics(diags, order)
	d := &Desired{CatalogFile: catalogFile, Hosts: hosts}
	for _, c := range checked {
		d.Deployments = append(d.Deployments, c.Deployment)
	}
	sort.SliceStable(d.Deployments, func(i, j int) bool {
		a, b := d.Deployments[i], d.Deployments[j]
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.Name < b.Name
	})
	return d, parser, diags
}

// loadCatalog applies the optional catalog block. extended is false when a
// catalog block names a file that could not be loaded: release lookups are
// then unreliable and their errors are not reported.
func loadCatalog(blocks []*catalogBlock, base *catalog.Catalog, eval evaluator) (file string, cat *catalog.Catalog, reliable bool) {
	cat, reliable = base, true
	for i, b := range blocks {
		if i > 0 {
			eval.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate catalog block",
				Detail: fmt.Sprintf("Only one catalog block is allowed across all files; the first is at %s. Merge the releases into one catalog file.",
					lineRef(blocks[0].DefRange)),
				Subject: b.DefRange.Ptr(),
			})
			continue
		}
		if !eval.present(b.File) {
			eval.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing catalog file",
				Detail:   `A catalog block names a JSON catalog file. Write file = "./releases.json", relative to this file.`,
				Subject:  b.DefRange.Ptr(),
			})
			continue
		}
		rel, ok := eval.str(b.File, "file", `a path, for example file = "./releases.json"`)
		if !ok {
			reliable = false
			continue
		}
		path := rel
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(b.DefRange.Filename), path)
		}
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		ext, err := base.WithFile(path)
		if err != nil {
			eval.errorf(b.File, "Cannot load catalog file",
				"%s. Name a JSON catalog file (path relative to this file) that lists only releases newer than the ones built in, or remove the catalog block.", err)
			reliable = false
			continue
		}
		file, cat = path, ext
	}
	return file, cat, reliable
}

// sortDiagnostics orders diagnostics without a location first, then by file
// (in load order) and position, so output is stable across runs.
func sortDiagnostics(diags hcl.Diagnostics, order map[string]int) {
	key := func(d *hcl.Diagnostic) (int, int, int, int) {
		if d.Subject == nil {
			return 0, 0, 0, 0
		}
		fi, ok := order[d.Subject.Filename]
		if !ok {
			fi = len(order)
		}
		return 1, fi, d.Subject.Start.Line, d.Subject.Start.Column
	}
	sort.SliceStable(diags, func(i, j int) bool {
		a1, a2, a3, a4 := key(diags[i])
		b1, b2, b3, b4 := key(diags[j])
		switch {
		case a1 != b1:
			return a1 < b1
		case a2 != b2:
			return a2 < b2
		case a3 != b3:
			return a3 < b3
		default:
			return a4 < b4
		}
	})
}
