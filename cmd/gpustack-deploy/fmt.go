package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

func runFmt(_ context.Context, s stdio, args []string) int {
	var (
		c     common
		check bool
	)
	fs := newFlagSet("fmt", "Rewrite the configuration files in canonical form (the layout hclwrite.Format gives, as\n"+
		"terraform fmt does). Each file changed is listed. With --check nothing is written: the files that\n"+
		"are not formatted are listed and the exit code is 1 (0 when all are).",
		"gpustack-deploy fmt -f deploy/ --check", s)
	fs.StringArrayVarP(&c.files, "file", "f", nil, "configuration file or directory of .hcl files (repeatable; default gpustack.hcl)")
	fs.BoolVar(&check, "check", false, "change nothing; list the files that are not formatted and exit 1 if there are any")
	fs.BoolVar(&c.noColor, "no-color", false, "no colors in diagnostics (NO_COLOR in the environment does the same)")
	if code, done := parse(fs, args, s); done {
		return code
	}
	files, err := hclFiles(c.paths())
	if err != nil {
		return errorf(s, "%v", err)
	}
	code := exitOK
	parser := hclparse.NewParser()
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			code = errorf(s, "%v", err)
			continue
		}
		// A file that does not parse is left alone: formatting tokens
		// around a syntax error could make it worse.
		if _, diags := parser.ParseHCL(src, name); diags.HasErrors() {
			c.printDiags(s, parser, diags)
			code = errorf(s, "%s has syntax errors; it was not formatted", name)
			continue
		}
		formatted := hclwrite.Format(src)
		if bytes.Equal(formatted, src) {
			continue
		}
		if check {
			fmt.Fprintln(s.out, name)
			code = exitError
			continue
		}
		if err := rewrite(name, formatted); err != nil {
			code = errorf(s, "%v", err)
			continue
		}
		fmt.Fprintln(s.out, name)
	}
	return code
}

// hclFiles expands directories to the .hcl files directly in them, in
// name order, as config.Load does; a file named twice is listed once.
func hclFiles(paths []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		key, err := filepath.Abs(name)
		if err != nil {
			key = name
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, name)
		}
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read configuration: %w", err)
		}
		if !info.IsDir() {
			if filepath.Ext(p) != ".hcl" {
				return nil, fmt.Errorf("%s does not end in .hcl; name .hcl files or a directory that holds them", p)
			}
			add(p)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(p, "*.hcl"))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", p, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("directory %s holds no .hcl file", p)
		}
		sort.Strings(matches)
		for _, m := range matches {
			add(m)
		}
	}
	return out, nil
}

// rewrite replaces a file's content, keeping its mode, through a temporary
// file renamed into place.
func rewrite(name string, data []byte) error {
	info, err := os.Stat(name)
	if err != nil {
		return fmt.Errorf("format %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return fmt.Errorf("format %s: %w", name, err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("format %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("format %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("format %s: %w", name, err)
	}
	return nil
}
