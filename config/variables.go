package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// EnvVarPrefix is the prefix of environment variables that supply values for
// declared variables: GPUSTACK_DEPLOY_VAR_<name>=value.
const EnvVarPrefix = "GPUSTACK_DEPLOY_VAR_"

// evalContext resolves every declared variable (--var, then the environment,
// then the default) and returns the context expressions are evaluated in.
// A variable that has no usable value is unknown in the context, so that
// expressions using it are skipped instead of reporting the same problem
// again.
func evalContext(blocks []*variableBlock, opts Options) (*hcl.EvalContext, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	constant := evaluator{ctx: nil, diags: &diags}

	declared := map[string]*variableBlock{}
	values := map[string]cty.Value{}
	for _, b := range blocks {
		if first, dup := declared[b.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate variable",
				Detail: fmt.Sprintf("Variable %q is declared twice; first declared at %s. Remove one of the blocks or rename it.",
					b.Name, lineRef(first.DefRange)),
				Subject: b.DefRange.Ptr(),
			})
			continue
		}
		declared[b.Name] = b
		if !hclsyntax.ValidIdentifier(b.Name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid variable name",
				Detail: fmt.Sprintf("%q cannot be used as var.%s. Name variables with letters, digits, underscores and dashes, starting with a letter or underscore, for example variable \"admin_password\".",
					b.Name, b.Name),
				Subject: b.DefRange.Ptr(),
			})
			continue
		}

		sensitive := false
		if b.Sensitive != nil {
			sensitive, _ = constant.boolean(b.Sensitive, "sensitive")
		}
		if b.Description != nil {
			constant.str(b.Description, "description", `a string, for example description = "Bootstrap password"`)
		}

		v, set := supplied(b.Name, opts)
		if !set && b.Default != nil && len(b.Default.Expr.Variables()) > 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Reference in default",
				Detail:   "A default must be a constant. Write the value itself, for example default = \"v2.2.3\", and combine variables where the value is used instead.",
				Subject:  b.Default.Expr.Range().Ptr(),
			})
			v, set = cty.DynamicVal, true
		} else if !set && b.Default != nil {
			dv, diags2 := b.Default.Expr.Value(nil)
			diags = append(diags, diags2...)
			switch {
			case diags2.HasErrors():
				v, set = cty.DynamicVal, true
			case dv.IsNull():
			default:
				v, set = dv, true
			}
		}
		if !set {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "No value for variable",
				Detail: fmt.Sprintf("Variable %q has no default and no value was given. Pass --var %s=VALUE, set %s%s=VALUE in the environment, or add default = ... to the block.",
					b.Name, b.Name, EnvVarPrefix, b.Name),
				Subject: b.DefRange.Ptr(),
			})
			v = cty.DynamicVal
		}
		if sensitive {
			v = v.Mark(sensitiveMark)
		}
		values[b.Name] = v
	}

	for _, name := range suppliedNames(opts) {
		if _, ok := declared[name.name]; ok {
			continue
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Value for undeclared variable",
			Detail: fmt.Sprintf("%s supplies variable %q, which no file declares. Add variable %q {} to a file, or remove the value.%s",
				name.source, name.name, name.name, didYouMean(name.name, declared)),
		})
	}

	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(values)}}
	return ctx, diags
}

// supplied returns the value given on the command line or, failing that, in
// the environment. Such values are always strings.
func supplied(name string, opts Options) (cty.Value, bool) {
	if v, ok := opts.Vars[name]; ok {
		return cty.StringVal(v), true
	}
	found, val := false, ""
	for _, kv := range opts.Environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k == EnvVarPrefix+name {
			// The last entry wins, as in os.Getenv on most systems.
			found, val = true, v
		}
	}
	if found {
		return cty.StringVal(val), true
	}
	return cty.NilVal, false
}

type suppliedName struct{ name, source string }

// suppliedNames lists every variable given a value outside the files, sorted,
// with where the value came from.
func suppliedNames(opts Options) []suppliedName {
	seen := map[string]string{}
	for name := range opts.Vars {
		seen[name] = "--var " + name
	}
	for _, kv := range opts.Environ {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvVarPrefix) || k == EnvVarPrefix {
			continue
		}
		name := strings.TrimPrefix(k, EnvVarPrefix)
		if _, ok := seen[name]; !ok {
			seen[name] = "The environment variable " + k
		}
	}
	out := make([]suppliedName, 0, len(seen))
	for name, src := range seen {
		out = append(out, suppliedName{name, src})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// didYouMean suggests the declared variable closest to name, if one is
// close enough to be a typo.
func didYouMean(name string, declared map[string]*variableBlock) string {
	names := make([]string, 0, len(declared))
	for d := range declared {
		names = append(names, d)
	}
	if s := closest(name, names); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

// closest returns the candidate within edit distance 2 of name (ignoring
// case), the nearest and then alphabetically first, or "".
func closest(name string, candidates []string) string {
	sort.Strings(candidates)
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// lineRef is "file:line", used to point at an earlier declaration.
func lineRef(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }
