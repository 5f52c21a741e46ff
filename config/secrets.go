package config

import (
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// secretEnv are environment variables that hold secrets whatever their
// suffix; names ending in one of secretSuffixes do too.
var (
	secretEnv      = []string{"GPUSTACK_BOOTSTRAP_PASSWORD", "GPUSTACK_TOKEN", "GPUSTACK_DATABASE_URL", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}
	secretSuffixes = []string{"_PASSWORD", "_TOKEN", "_SECRET", "_API_KEY"}
	// secretFlags maps `gpustack start` flags that take a secret to the
	// variable name suggested for it.
	secretFlags = map[string]string{
		"--token":              "token",
		"-t":                   "token",
		"--bootstrap-password": "bootstrap_password",
		"--database-url":       "database_url",
		"--api-key":            "api_key",
	}
	// managedFlags are set by gpustack-deploy from the volumes, with the
	// environment variable GPUStack reads in their place.
	managedFlags = map[string]string{"--data-dir": "GPUSTACK_DATA_DIR", "--cache-dir": "GPUSTACK_CACHE_DIR"}
)

// IsSecretEnv reports whether an environment variable name holds a secret,
// so its value must come from a sensitive variable.
func IsSecretEnv(name string) bool {
	for _, s := range secretEnv {
		if name == s {
			return true
		}
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// SecretFlag reports whether a `gpustack start` flag takes a secret, with
// the variable name suggested for its value ("--token" → "token").
func SecretFlag(flag string) (variable string, ok bool) {
	variable, ok = secretFlags[flag]
	return variable, ok
}

// checkArgs rejects flags the tool sets itself, a --port that contradicts
// container_port (0 when unknown: not compared), flags the target release
// does not accept (or deprecates, a warning), --database-url (database_url
// holds it), and secret flags with values in plain text.
func (c *checker) checkArgs(args []Value, attr *hcl.Attribute, containerPort int, t releaseTarget) {
	for i, a := range args {
		if !strings.HasPrefix(a.S, "-") {
			continue
		}
		flag, inline, hasInline := strings.Cut(a.S, "=")
		value, valueAt, hasValue := Value{S: inline, Sensitive: a.Sensitive}, i, hasInline
		if !hasInline && i+1 < len(args) {
			value, valueAt, hasValue = args[i+1], i+1, true
		}
		if flag == "--database-url" {
			c.checkDatabaseURLSetting(flag, elementRange(attr, i))
			continue
		}
		if c.checkEraArg(flag, elementRange(attr, i), t) {
			continue
		}
		if env, ok := managedFlags[flag]; ok {
			c.errorAt(elementRange(attr, i), "Flag set by gpustack-deploy",
				"args must not set %s (nor env %s): the data volume is always mounted at %s and the cache volume's path is passed as --cache-dir. Remove it from args; to move the cache write volume \"cache\" { path = \"...\" }.", flag, env, DataPath)
			continue
		}
		if flag == "--port" && hasValue && containerPort != 0 && value.S != strconv.Itoa(containerPort) {
			c.errorAt(elementRange(attr, valueAt), "Conflicting --port",
				"args sets --port %s, but container_port is %d and gpustack-deploy passes container_port to GPUStack as --port. Remove --port from args and write container_port = %s.", value, containerPort, value)
			continue
		}
		if name, ok := secretFlags[flag]; ok && hasValue && !value.Sensitive {
			write := strconv.Quote(flag) + ", var." + name
			if hasInline {
				write = strconv.Quote(flag + "=${var." + name + "}")
			}
			c.errorAt(elementRange(attr, valueAt), "Secret in plain text",
				"The value of %s is a secret but does not come from a sensitive variable, so it would be shown in plans and saved in plan files. Declare variable %q { sensitive = true } and write %s in args.", flag, name, write)
		}
	}
}

// checkEnv is checkArgs for the environment.
func (c *checker) checkEnv(env map[string]Value, attr *hcl.Attribute, containerPort int, t releaseTarget) {
	for _, name := range sortedKeys(env) {
		v := env[name]
		r := keyRange(attr, name)
		switch {
		case name == envDatabaseURL:
			c.checkDatabaseURLSetting(name, r)
		case c.checkMigrationEnv(name, r), c.checkEraEnv(name, r, t):
		case name == "" || strings.ContainsAny(name, "=\x00"):
			c.errorAt(r, "Invalid environment variable name",
				`%q cannot name an environment variable: it must be non-empty and contain no "=". Write for example GPUSTACK_DEBUG = "true".`, name)
		case name == "GPUSTACK_DATA_DIR" || name == "GPUSTACK_CACHE_DIR":
			c.errorAt(r, "Variable set by gpustack-deploy",
				"env must not set %s: the data volume is always mounted at %s and the cache volume's path is passed as --cache-dir. Remove it; to move the cache write volume \"cache\" { path = \"...\" }.", name, DataPath)
		case name == "GPUSTACK_PORT" && containerPort != 0 && v.S != strconv.Itoa(containerPort):
			c.errorAt(r, "Conflicting GPUSTACK_PORT",
				"env sets GPUSTACK_PORT = %s, but container_port is %d and gpustack-deploy passes container_port to GPUStack as --port. Remove GPUSTACK_PORT from env and write container_port = %s.", v, containerPort, v)
		case IsSecretEnv(name) && !v.Sensitive:
			vn := strings.ToLower(name)
			c.errorAt(r, "Secret in plain text",
				"%s holds a secret but its value does not come from a sensitive variable, so it would be shown in plans and saved in plan files. Declare variable %q { sensitive = true } and write %s = var.%s.", name, vn, name, vn)
		}
	}
}

func (c *checker) checkLabels(labels map[string]string, attr *hcl.Attribute) {
	for _, k := range sortedKeys(labels) {
		switch {
		case k == "":
			c.errorAt(keyRange(attr, k), "Invalid label", `A label key cannot be empty. Write for example labels = { team = "ml" }.`)
		case strings.HasPrefix(k, ReservedLabelPrefix):
			c.errorAt(keyRange(attr, k), "Reserved label",
				"Labels starting with %q are written by gpustack-deploy to recognise its containers. Rename %q, for example to %q.", ReservedLabelPrefix, k, "team."+strings.TrimPrefix(k, ReservedLabelPrefix))
		}
	}
}

// elementRange is the range of the i-th element of a list literal, or of
// the whole expression when it is not a literal.
func elementRange(attr *hcl.Attribute, i int) hcl.Range {
	if t, ok := attr.Expr.(*hclsyntax.TupleConsExpr); ok && i < len(t.Exprs) {
		return t.Exprs[i].Range()
	}
	return attr.Expr.Range()
}

// keyRange is the range of the item with the given key in a map literal, or
// of the whole expression when the key is not written literally.
func keyRange(attr *hcl.Attribute, key string) hcl.Range {
	if o, ok := attr.Expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range o.Items {
			k, diags := item.KeyExpr.Value(nil)
			if diags.HasErrors() || !k.IsKnown() || k.IsNull() || k.Type() != cty.String {
				continue
			}
			if k.AsString() == key {
				return hcl.RangeBetween(item.KeyExpr.Range(), item.ValueExpr.Range())
			}
		}
	}
	return attr.Expr.Range()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkEraArg applies checkEraSetting to a flag of args.
func (c *checker) checkEraArg(flag string, r hcl.Range, t releaseTarget) bool {
	for _, s := range []eraSetting{disableWorker, enableWorker, databasePort} {
		if flag == s.flag {
			return c.checkEraSetting(s, flag, r, t) && s != disableWorker
		}
	}
	return false
}

// checkEraEnv applies checkEraSetting to an environment variable.
func (c *checker) checkEraEnv(name string, r hcl.Range, t releaseTarget) bool {
	for _, s := range []eraSetting{disableWorker, enableWorker, databasePort} {
		if name == s.env {
			return c.checkEraSetting(s, "env "+name, r, t) && s != disableWorker
		}
	}
	return false
}
