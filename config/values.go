package config

import (
	"fmt"
	"math/big"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// sensitiveMark is the cty mark carried by values of variables declared
// sensitive = true and by everything computed from them.
const sensitiveMark = "sensitive"

// evaluator evaluates attribute expressions with the variables in scope. Every
// problem becomes a diagnostic; the callers only learn whether a usable value
// came out.
type evaluator struct {
	ctx   *hcl.EvalContext
	diags *hcl.Diagnostics
}

func (e evaluator) add(d *hcl.Diagnostic) { *e.diags = append(*e.diags, d) }

func (e evaluator) errorf(attr *hcl.Attribute, summary, format string, args ...any) {
	r := attr.Expr.Range()
	e.add(&hcl.Diagnostic{
		Severity:    hcl.DiagError,
		Summary:     summary,
		Detail:      fmt.Sprintf(format, args...),
		Subject:     &r,
		Expression:  attr.Expr,
		EvalContext: e.ctx,
	})
}

// value evaluates attr. ok is false when the attribute is absent or null
// (meaning "use the default"), or when its value is not known because an
// error has already been reported for it.
func (e evaluator) value(attr *hcl.Attribute) (cty.Value, bool) {
	if attr == nil {
		return cty.NilVal, false
	}
	if !e.checkReferences(attr.Expr) {
		return cty.NilVal, false
	}
	v, diags := attr.Expr.Value(e.ctx)
	*e.diags = append(*e.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	raw, _ := v.UnmarkDeep()
	if !raw.IsWhollyKnown() || raw.IsNull() {
		return cty.NilVal, false
	}
	return v, true
}

// present reports whether attr is written with a value other than null. An
// expression with errors counts as present: its errors are reported when it
// is evaluated for real.
func (e evaluator) present(attr *hcl.Attribute) bool {
	if attr == nil {
		return false
	}
	v, diags := attr.Expr.Value(e.ctx)
	if diags.HasErrors() {
		return true
	}
	raw, _ := v.UnmarkDeep()
	return !raw.IsKnown() || !raw.IsNull()
}

// plain evaluates attr as a value of type ty that must not be sensitive:
// everything but args and env ends up in plans, labels or logs.
func (e evaluator) plain(attr *hcl.Attribute, ty cty.Type, name, example string) (cty.Value, bool) {
	v, ok := e.value(attr)
	if !ok {
		return cty.NilVal, false
	}
	raw, marks := v.UnmarkDeep()
	if _, sensitive := marks[sensitiveMark]; sensitive {
		e.errorf(attr, "Sensitive value not allowed",
			"%s cannot be sensitive: it is shown in plans and stored in container metadata. Give it a value that does not come from a variable declared sensitive = true; only args and env may hold secrets.", name)
		return cty.NilVal, false
	}
	out, err := convert.Convert(raw, ty)
	if err != nil {
		e.errorf(attr, "Incorrect attribute value type",
			"Inappropriate value for %s: %s. Write %s.", name, err, example)
		return cty.NilVal, false
	}
	if !out.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return out, true
}

func (e evaluator) str(attr *hcl.Attribute, name, example string) (string, bool) {
	v, ok := e.plain(attr, cty.String, name, example)
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

func (e evaluator) boolean(attr *hcl.Attribute, name string) (bool, bool) {
	v, ok := e.plain(attr, cty.Bool, name, fmt.Sprintf("true or false, for example %s = true", name))
	if !ok {
		return false, false
	}
	return v.True(), true
}

// integer evaluates a whole number that fits in an int.
func (e evaluator) integer(attr *hcl.Attribute, name, example string) (int, bool) {
	v, ok := e.plain(attr, cty.Number, name, example)
	if !ok {
		return 0, false
	}
	bf := v.AsBigFloat()
	if bf.IsInt() {
		if i, acc := bf.Int64(); acc == big.Exact && i >= -1<<31 && i < 1<<31 {
			return int(i), true
		}
	}
	e.errorf(attr, "Invalid number", "%s must be a whole number, not %s. Write %s.", name, bf.Text('g', 10), example)
	return 0, false
}

// stringMap evaluates a map of strings that must not be sensitive.
func (e evaluator) stringMap(attr *hcl.Attribute, name, example string) (map[string]string, bool) {
	v, ok := e.plain(attr, cty.Map(cty.String), name, example)
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for k, elem := range v.AsValueMap() {
		if elem.IsNull() {
			e.errorf(attr, "Null value in map", "%s[%q] is null. Give it a string value, or remove the key.", name, k)
			return nil, false
		}
		out[k] = elem.AsString()
	}
	return out, true
}

// valueList evaluates a list of strings whose elements may be sensitive.
func (e evaluator) valueList(attr *hcl.Attribute, name, example string) ([]Value, bool) {
	v, ok := e.value(attr)
	if !ok {
		return nil, false
	}
	top, topMarks := v.Unmark()
	_, allSensitive := topMarks[sensitiveMark]
	conv, err := convert.Convert(top, cty.List(cty.String))
	if err != nil {
		e.errorf(attr, "Incorrect attribute value type", "Inappropriate value for %s: %s. Write %s.", name, err, example)
		return nil, false
	}
	out := []Value{}
	for i, elem := range conv.AsValueSlice() {
		raw, marks := elem.UnmarkDeep()
		if !raw.IsKnown() {
			return nil, false
		}
		if raw.IsNull() {
			e.errorf(attr, "Null value in list", "%s[%d] is null. Give it a string value, or remove it.", name, i)
			return nil, false
		}
		_, s := marks[sensitiveMark]
		out = append(out, Value{S: raw.AsString(), Sensitive: s || allSensitive})
	}
	return out, true
}

// valueMap evaluates a map of strings whose values may be sensitive.
func (e evaluator) valueMap(attr *hcl.Attribute, name, example string) (map[string]Value, bool) {
	v, ok := e.value(attr)
	if !ok {
		return nil, false
	}
	top, topMarks := v.Unmark()
	_, allSensitive := topMarks[sensitiveMark]
	conv, err := convert.Convert(top, cty.Map(cty.String))
	if err != nil {
		e.errorf(attr, "Incorrect attribute value type", "Inappropriate value for %s: %s. Write %s.", name, err, example)
		return nil, false
	}
	out := map[string]Value{}
	m := conv.AsValueMap()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		raw, marks := m[k].UnmarkDeep()
		if !raw.IsKnown() {
			return nil, false
		}
		if raw.IsNull() {
			e.errorf(attr, "Null value in map", "%s[%q] is null. Give it a string value, or remove the key.", name, k)
			return nil, false
		}
		_, s := marks[sensitiveMark]
		out[k] = Value{S: raw.AsString(), Sensitive: s || allSensitive}
	}
	return out, true
}

// checkReferences reports references to anything but declared variables with
// a remedy, rather than HCL's generic "Unsupported attribute".
func (e evaluator) checkReferences(expr hcl.Expression) bool {
	if e.ctx == nil {
		return true // constant context: HCL says "Variables not allowed"
	}
	declared := e.ctx.Variables["var"].Type().AttributeTypes()
	ok := true
	for _, tr := range expr.Variables() {
		r := tr.SourceRange()
		if tr.RootName() != "var" {
			e.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown reference",
				Detail:   fmt.Sprintf("%q is not something a value can refer to. Refer to variables as var.<name>, for example var.%s, or quote the text to write a string.", tr.RootName(), tr.RootName()),
				Subject:  &r,
			})
			ok = false
			continue
		}
		if len(tr) < 2 {
			e.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Incomplete variable reference",
				Detail:   "var alone is not a value. Name the variable, for example var.admin_password.",
				Subject:  &r,
			})
			ok = false
			continue
		}
		step, isAttr := tr[1].(hcl.TraverseAttr)
		if !isAttr {
			continue // var["x"]: let HCL explain
		}
		if _, found := declared[step.Name]; !found {
			names := make([]string, 0, len(declared))
			for n := range declared {
				names = append(names, n)
			}
			hint := ""
			if s := closest(step.Name, names); s != "" {
				hint = fmt.Sprintf(" Did you mean var.%s?", s)
			}
			e.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Undeclared variable",
				Detail:   fmt.Sprintf("No file declares variable %q. Add variable %q { default = ... } to a file, or fix the name.%s", step.Name, step.Name, hint),
				Subject:  &r,
			})
			ok = false
		}
	}
	return ok
}
