package importer

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// word is one element of args or one env value: a literal, or a sensitive
// variable, written after prefix ("--token=" in "--token=${var.token}").
type word struct {
	lit      string
	prefix   string
	variable string
}

// managedEnv are the environment variables gpustack-deploy sets in place
// of the volumes' flags.
const (
	envDataDir  = "GPUSTACK_DATA_DIR"
	envCacheDir = "GPUSTACK_CACHE_DIR"
	envPort     = "GPUSTACK_PORT"
	// database_url holds the URL; gpustack-deploy sets the data-migration
	// switches itself (spec.EnvDatabaseURL, spec.EnvDataMigration,
	// spec.EnvMigrationDataDir).
	envDatabaseURL      = spec.EnvDatabaseURL
	envDataMigration    = spec.EnvDataMigration
	envMigrationDataDir = spec.EnvMigrationDataDir
)

var variableRe = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// secret declares a sensitive variable for value, named after hint, and
// returns its name. The same value under the same name is declared once.
func (d *describer) secret(hint, value, source string) string {
	base := variableRe.ReplaceAllString(strings.ToLower(hint), "_")
	if base == "" || base[0] >= '0' && base[0] <= '9' || base[0] == '-' {
		base = "secret_" + base
	}
	name := base
	for n := 2; ; n++ {
		v, taken := d.res.Secrets[name]
		if !taken {
			break
		}
		if v == value {
			return name
		}
		name = base + "_" + strconv.Itoa(n)
	}
	d.res.Secrets[name] = value
	d.res.SecretSources[name] = source
	return name
}

// args maps the container's command to args: secrets become variables,
// --data-dir and --cache-dir are taken out (the volumes say where data
// and cache live) and --port gives container_port.
func (d *describer) args() {
	d.dataDir = config.DataPath
	cmd := d.j.Config.Cmd
	d.draft.args = []word{}
	for i := 0; i < len(cmd); i++ {
		a := cmd[i]
		if !strings.HasPrefix(a, "-") {
			d.draft.args = append(d.draft.args, word{lit: a})
			continue
		}
		flag, inline, hasInline := strings.Cut(a, "=")
		value, hasValue := inline, hasInline
		if !hasInline && i+1 < len(cmd) {
			value, hasValue = cmd[i+1], true
		}
		switch variable, secret := config.SecretFlag(flag); {
		case (flag == "--data-dir" || flag == "--cache-dir") && hasValue:
			if !hasInline {
				i++
			}
			if flag == "--data-dir" {
				d.dataDir = cleanPath(value)
			} else {
				d.cacheDir, d.cacheFlag = cleanPath(value), true
			}
		case flag == "--database-url" && hasValue:
			// config takes the URL from database_url only.
			source := "argument " + flag
			if !hasInline {
				source, i = "argument after "+flag, i+1
			}
			d.draft.databaseURL = d.secret(variable, value, source)
			d.unexpressed("%s is written as database_url, which gpustack-deploy passes as env %s; the container is replaced to move it", flag, envDatabaseURL)
		case secret && hasValue && hasInline:
			name := d.secret(variable, value, "argument "+flag)
			d.draft.args = append(d.draft.args, word{prefix: flag + "=", variable: name})
		case secret && hasValue:
			name := d.secret(variable, value, "argument after "+flag)
			d.draft.args = append(d.draft.args, word{lit: a}, word{variable: name})
			i++
		default:
			if flag == "--port" && hasValue {
				if p, err := strconv.Atoi(value); err == nil {
					d.draft.containerPort = p
				}
			}
			d.draft.args = append(d.draft.args, word{lit: a})
		}
	}
}

// env maps the container's environment to env, leaving out what the image
// sets itself; secrets become variables.
func (d *describer) env() {
	fromImage := map[string]bool{}
	if d.img != nil && d.img.Config != nil {
		for _, kv := range d.img.Config.Env {
			fromImage[kv] = true
		}
	} else {
		d.unexpressed("the container's image is no longer on the host, so the environment and labels it sets cannot be told apart from the container's own; the file lists them all")
	}
	d.draft.env = map[string]word{}
	for _, kv := range d.j.Config.Env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || fromImage[kv] {
			continue
		}
		switch {
		case name == envDataDir:
			if d.dataDir == config.DataPath {
				d.dataDir = cleanPath(value)
			}
		case name == envCacheDir:
			if !d.cacheFlag {
				d.cacheDir, d.cacheFlag = cleanPath(value), true
			}
		case name == envDatabaseURL:
			d.draft.databaseURL = d.secret("database_url", value, "env "+name)
		case name == envDataMigration || name == envMigrationDataDir:
			d.unexpressed("env %s is set by gpustack-deploy only for the one start of a planned v0.x → v2 data migration; the file leaves it out", name)
		case config.IsSecretEnv(name):
			d.draft.env[name] = word{variable: d.secret(name, value, "env "+name)}
		case name == envPort && d.draft.containerPort != 0 && value != strconv.Itoa(d.draft.containerPort):
			d.unexpressed("env %s=%s contradicts --port %d (GPUStack uses --port); the file leaves %s out", envPort, value, d.draft.containerPort, envPort)
		default:
			if name == envPort && d.draft.containerPort == 0 {
				if p, err := strconv.Atoi(value); err == nil {
					d.draft.containerPort = p
				}
			}
			d.draft.env[name] = word{lit: value}
		}
	}
	if d.draft.containerPort == 0 {
		d.draft.containerPort = config.DefaultPort
	}
	if d.dataDir != config.DataPath {
		d.note("GPUStack keeps its data at %s in this container; gpustack-deploy always mounts the data volume at %s and passes no --data-dir, so the next plan replaces the container", d.dataDir, config.DataPath)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
