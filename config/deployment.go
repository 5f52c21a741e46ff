package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// Defaults of a gpustack block.
const (
	DefaultImage         = "gpustack/gpustack"
	DefaultPort          = 80
	DefaultListenAddress = "0.0.0.0"
	DefaultRestart       = "unless-stopped"
	DefaultHealthTimeout = 10 * time.Minute
	DefaultHealthAddress = "127.0.0.1"
	DefaultBackupDir     = "./backups"
	DefaultBackupKeep    = 5
)

// ReservedLabelPrefix starts the container labels gpustack-deploy writes
// itself; the files may not set them.
const ReservedLabelPrefix = "io.gpustack-deploy."

var (
	deploymentNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	containerNameRe  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	restartPolicies  = []string{"no", "always", "unless-stopped", "on-failure"}
	pullPolicies     = []string{string(PullMissing), string(PullAlways), string(PullNever)}
)

// checker validates one gpustack block.
type checker struct {
	eval            evaluator
	cat             *catalog.Catalog
	catalogReliable bool
}

// checkedDeployment is a decoded deployment with the source ranges the
// checks across deployments point at.
type checkedDeployment struct {
	Deployment
	containerRange hcl.Range
	portRange      hcl.Range
	databaseRange  hcl.Range
	// containerBad and portBad mark values that failed validation, so the
	// checks across deployments do not compare their defaults.
	containerBad, portBad bool
	// server is the gpustack block a worker joins (nil for servers, and
	// for a worker whose server attribute is wrong).
	server *checkedDeployment
	// healthAddressSet: health { address } was written.
	healthAddressSet bool
}

func (c *checker) errorAt(r hcl.Range, summary, format string, args ...any) {
	c.eval.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  r.Ptr(),
	})
}

// decodeDeployment turns one gpustack block into a Deployment with defaults
// applied, reporting every problem it finds in the block alone.
//
// A worker block (role RoleWorker) is decoded by the same rules, with its
// own defaults (the host network, the worker port) and checks; server is
// the gpustack block it names, when that could be found, whose version it
// follows unless it names its own.
func decodeDeployment(b *deploymentBlock, cat *catalog.Catalog, catalogReliable bool, eval evaluator, role string, server *checkedDeployment) *checkedDeployment {
	c := &checker{eval: eval, cat: cat, catalogReliable: catalogReliable}
	d := Deployment{
		Name:          b.Name,
		Role:          role,
		Host:          DefaultHost,
		Image:         DefaultImage,
		ContainerName: "gpustack-" + b.Name,
		Port:          DefaultPort,
		ContainerPort: DefaultPort,
		ListenAddress: DefaultListenAddress,
		NetworkMode:   NetworkBridge,
		Args:          []Value{},
		Env:           map[string]Value{},
		Labels:        map[string]string{},
		Restart:       DefaultRestart,
		DeclRange:     b.DefRange,
		VersionRange:  b.DefRange,
	}
	out := &checkedDeployment{containerRange: b.DefRange, portRange: b.DefRange}
	if !deploymentNameRe.MatchString(b.Name) {
		c.errorAt(b.DefRange, "Invalid deployment name",
			`%q cannot name a deployment: use 1 to 63 lowercase letters, digits, "_" and "-", starting with a letter or digit, for example gpustack "prod".`, b.Name)
	}

	c.roleAttributes(b, role)
	if role == RoleWorker {
		d.NetworkMode = NetworkHost
		d.ContainerPort = DefaultWorkerPort
		d.MaxParallel = 0
	} else {
		d.MaxParallel = DefaultMaxParallel
	}

	var rel *catalog.Release
	var era catalog.Engine
	eraKnown := false
	if !eval.present(b.Version) && role == RoleWorker {
		if server != nil {
			rel, era, eraKnown = c.followServer(&d, b, server)
		}
	} else if !eval.present(b.Version) {
		c.errorAt(b.DefRange, "Missing version",
			`Every gpustack block needs the image tag to run. Add version = "v2.2.3" (a release), or a tag such as "v0.7.1" with variant = "cpu".`)
	} else {
		d.VersionRange = b.Version.Expr.Range()
		ver, verOK := eval.str(b.Version, "version", `a tag, for example version = "v2.2.3"`)
		variant, variantOK := eval.str(b.Variant, "variant", `a device suffix, for example variant = "cpu"`)
		if variantOK {
			d.Variant = variant
		}
		if verOK {
			d.Version = ver
			if b.Variant == nil || variantOK {
				rel, era, eraKnown = c.checkVersion(ver, b.Version, d.Variant, b.Variant)
			}
		}
	}
	d.Era = era

	if s, ok := eval.str(b.Image, "image", `a repository, for example image = "gpustack/gpustack"`); ok {
		if c.checkImage(s, b.Image) {
			d.Image = s
		}
	}
	if s, ok := eval.str(b.ContainerName, "container_name", `a name, for example container_name = "gpustack-prod"`); !ok {
		out.containerBad = eval.present(b.ContainerName)
	} else {
		out.containerRange = b.ContainerName.Expr.Range()
		d.ContainerName = s
		if !containerNameRe.MatchString(s) {
			out.containerBad = true
			eval.errorf(b.ContainerName, "Invalid container name",
				`%q is not a Docker container name: use at least 2 letters, digits, "_", "." and "-", starting with a letter or digit, for example container_name = "gpustack-%s".`, s, b.Name)
		}
	}
	c.network(&d, b, out)
	if d.HostNetwork() {
		d.Port, d.ListenAddress = 0, ""
	} else if p, ok := c.port(b.Port, "port", "port = 8080"); ok {
		d.Port = p
		out.portRange = b.Port.Expr.Range()
	} else {
		out.portBad = out.portBad || eval.present(b.Port)
	}
	// knownPort is 0 when container_port is invalid, so that --port in args
	// is not compared with a default the file did not mean.
	knownPort := d.ContainerPort
	if role == RoleWorker {
		knownPort = 0
		c.workerOptions(&d, b, out)
	} else if p, ok := c.port(b.ContainerPort, "container_port", "container_port = 80"); ok {
		d.ContainerPort, knownPort = p, p
	} else if eval.present(b.ContainerPort) {
		knownPort = 0
	}
	if !d.HostNetwork() {
		if a, ok := c.address(b.ListenAddress, "listen_address", `listen_address = "0.0.0.0"`); ok {
			d.ListenAddress = a
		} else if eval.present(b.ListenAddress) {
			out.portBad = true
		}
	}
	target := releaseTarget{rel: rel, era: era, known: eraKnown}
	if args, ok := eval.valueList(b.Args, "args", `a list of strings, for example args = ["--disable-worker"]`); ok {
		d.Args = args
		c.checkArgs(args, b.Args, knownPort, target)
	}
	if env, ok := eval.valueMap(b.Env, "env", `a map of strings, for example env = { GPUSTACK_DEBUG = "false" }`); ok {
		d.Env = env
		c.checkEnv(env, b.Env, knownPort, target)
	}
	if role == RoleWorker {
		c.checkWorkerSettings(d.Args, b.Args, d.Env, b.Env)
	} else {
		c.serverOptions(&d, b)
	}
	c.databaseURL(&d, b.DatabaseURL, target)
	if d.ExternalDatabase() {
		out.databaseRange = b.DatabaseURL.Expr.Range()
	}
	if labels, ok := eval.stringMap(b.Labels, "labels", `a map of strings, for example labels = { team = "ml" }`); ok {
		d.Labels = labels
		c.checkLabels(labels, b.Labels)
	}
	if s, ok := c.enum(b.Restart, "restart", restartPolicies); ok {
		d.Restart = s
	}

	c.engineOptions(&d, b)
	c.volumes(&d, b, rel, era, eraKnown)
	c.mounts(&d, b)
	d.Policy = c.policy(b.Policy)
	if role == RoleServer {
		// A worker keeps no database: it has no backup policy.
		d.Backup = c.backup(b.Backup, b.DefRange.Filename)
		c.backupDatabase(&d.Backup, b.Backup, b.DatabaseURL, &d, target)
	}
	d.Health = c.health(b.Health, d.ListenAddress)
	out.healthAddressSet = b.Health != nil && b.Health.Address != nil
	out.server = server
	out.Deployment = d
	return out
}

func (c *checker) port(attr *hcl.Attribute, name, example string) (int, bool) {
	p, ok := c.eval.integer(attr, name, example)
	if !ok {
		return 0, false
	}
	if p < 1 || p > 65535 {
		c.eval.errorf(attr, "Invalid port", "%s must be between 1 and 65535, not %d. Write %s.", name, p, example)
		return 0, false
	}
	return p, true
}

// address parses an IP address and returns its canonical form.
func (c *checker) address(attr *hcl.Attribute, name, example string) (string, bool) {
	s, ok := c.eval.str(attr, name, example)
	if !ok {
		return "", false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		c.eval.errorf(attr, "Invalid IP address", "%s must be an IPv4 or IPv6 address, not %q. Write %s.", name, s, example)
		return "", false
	}
	return a.String(), true
}

func (c *checker) enum(attr *hcl.Attribute, name string, allowed []string) (string, bool) {
	example := fmt.Sprintf("%s = %q", name, allowed[0])
	s, ok := c.eval.str(attr, name, "a string, for example "+example)
	if !ok {
		return "", false
	}
	for _, a := range allowed {
		if s == a {
			return s, true
		}
	}
	c.eval.errorf(attr, "Invalid "+name, "%s must be one of %s, not %q. Write for example %s.", name, quoteList(allowed), s, example)
	return "", false
}

func (c *checker) policy(b *policyBlock) Policy {
	p := Policy{Pull: PullMissing}
	if b == nil {
		return p
	}
	flags := []struct {
		attr *hcl.Attribute
		name string
		dst  *bool
	}{
		{b.AllowDev, "allow_dev", &p.AllowDev},
		{b.AllowPrerelease, "allow_prerelease", &p.AllowPrerelease},
		{b.AllowFloating, "allow_floating", &p.AllowFloating},
		{b.AllowDowngrade, "allow_downgrade", &p.AllowDowngrade},
	}
	for _, f := range flags {
		if v, ok := c.eval.boolean(f.attr, f.name); ok {
			*f.dst = v
		}
	}
	if s, ok := c.enum(b.Pull, "pull", pullPolicies); ok {
		p.Pull = PullPolicy(s)
	}
	return p
}

// backup resolves the backup directory against the directory of the file
// that declares it.
func (c *checker) backup(b *backupBlock, file string) BackupPolicy {
	p := BackupPolicy{Dir: DefaultBackupDir, BeforeUpgrade: true, Keep: DefaultBackupKeep}
	if b != nil {
		if s, ok := c.eval.str(b.Dir, "dir", `a directory, for example dir = "./backups"`); ok {
			if strings.TrimSpace(s) == "" {
				c.eval.errorf(b.Dir, "Empty backup directory", `dir must name a directory. Write dir = "./backups" (relative to this file) or an absolute path.`)
			} else {
				p.Dir = s
			}
		}
		if v, ok := c.eval.boolean(b.BeforeUpgrade, "before_upgrade"); ok {
			p.BeforeUpgrade = v
		}
		if n, ok := c.eval.integer(b.Keep, "keep", "keep = 5"); ok {
			if n < 1 {
				c.eval.errorf(b.Keep, "Invalid backup count",
					"keep is how many backups of the deployment are kept and must be at least 1, not %d. Write keep = 5; to take no backups write before_upgrade = false.", n)
			} else {
				p.Keep = n
			}
		}
	}
	if !filepath.IsAbs(p.Dir) {
		p.Dir = filepath.Join(filepath.Dir(file), p.Dir)
	}
	if abs, err := filepath.Abs(p.Dir); err == nil {
		p.Dir = abs
	}
	return p
}

func (c *checker) health(b *healthBlock, listen string) Health {
	h := Health{Timeout: DefaultHealthTimeout, Address: DefaultHealthAddress}
	if la, err := netip.ParseAddr(listen); err == nil && !la.IsUnspecified() {
		// A port bound to one address is reachable there only.
		h.Address = la.String()
	}
	if b == nil {
		return h
	}
	if s, ok := c.eval.str(b.Timeout, "timeout", `a duration, for example timeout = "10m"`); ok {
		dur, err := time.ParseDuration(s)
		switch {
		case err != nil:
			c.eval.errorf(b.Timeout, "Invalid health timeout", `%q is not a duration. Write a number with a unit, for example timeout = "10m" or "90s".`, s)
		case dur <= 0:
			c.eval.errorf(b.Timeout, "Invalid health timeout", `timeout must be greater than zero, not %q. Write for example timeout = "10m".`, s)
		default:
			h.Timeout = dur
		}
	}
	if a, ok := c.address(b.Address, "address", `address = "127.0.0.1"`); ok {
		h.Address = a
		la, err := netip.ParseAddr(listen)
		if err == nil && !la.IsUnspecified() && la.String() != a {
			c.eval.add(&hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Health address cannot reach the port",
				Detail: fmt.Sprintf("The port is published on %s only, so the health check at %s will time out. Write address = %q, or remove address to use it by default.",
					la, a, la.String()),
				Subject: b.Address.Expr.Range().Ptr(),
			})
		}
	}
	return h
}
