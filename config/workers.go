package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// A worker block is a GPUStack worker (facts §6): the same image as its
// server, started with --server-url and the server's registration token,
// on the host's network, with a data volume of its own. gpustack-deploy
// passes the URL, the token, the worker's name and port itself, so the
// files may not.

// workerFlags are the `gpustack start` flags gpustack-deploy sets on a
// worker, with the environment variable GPUStack reads in their place.
var workerFlags = []struct{ flag, short, env, instead string }{
	{"--server-url", "-s", "GPUSTACK_SERVER_URL", "server = gpustack.NAME (or server_url)"},
	{"--token", "-t", "GPUSTACK_TOKEN", "nothing: the token is read from the server's data volume"},
	{"--worker-name", "", "GPUSTACK_WORKER_NAME", "worker_name"},
	{"--worker-port", "", "GPUSTACK_WORKER_PORT", "worker_port"},
}

// roleAttributes reports attributes and blocks that belong to the other role.
func (c *checker) roleAttributes(b *deploymentBlock, role string) {
	type attr struct {
		a    *hcl.Attribute
		name string
	}
	if role == RoleWorker {
		for _, x := range []attr{{b.DatabaseURL, "database_url"}, {b.APIKey, "api_key"}, {b.AdminPassword, "admin_password"}, {b.ContainerPort, "container_port"}, {b.Port, "port"}, {b.ListenAddress, "listen_address"}} {
			if x.a != nil {
				detail := fmt.Sprintf("A worker has no database and serves no UI, so %s belongs to its gpustack block. Remove it from worker %q.", x.name, b.Name)
				switch x.name {
				case "container_port", "port", "listen_address":
					detail = fmt.Sprintf("A worker runs on the host's network and listens on worker_port (default %d). Remove %s; write worker_port = 10160 to move it.", DefaultWorkerPort, x.name)
				}
				c.errorAt(x.a.NameRange, "Not a worker setting", "%s", detail)
			}
		}
		if b.Backup != nil {
			c.errorAt(b.Backup.DefRange, "Not a worker setting",
				"A worker keeps no database, so nothing of it is backed up: the backup block belongs to its gpustack block. Remove it from worker %q.", b.Name)
		}
		if b.Rollout != nil {
			c.errorAt(b.Rollout.DefRange, "Not a worker setting",
				"rollout says how the workers of a server are upgraded; write it in the gpustack block worker %q names with server.", b.Name)
		}
		if b.Server == nil {
			c.errorAt(b.DefRange, "Missing server",
				`A worker joins a server of the same files. Write server = gpustack.NAME, naming a gpustack block.`)
		}
		return
	}
	for _, x := range []attr{{b.Server, "server"}, {b.ServerURL, "server_url"}, {b.WorkerPort, "worker_port"}, {b.WorkerName, "worker_name"}} {
		if x.a != nil {
			c.errorAt(x.a.NameRange, "Not a server setting",
				"%s belongs to worker blocks. To run a worker, declare worker \"NAME\" { server = gpustack.%s ... }; to start the server's embedded worker, pass --enable-worker (v2.0.1+) in args.", x.name, b.Name)
		}
	}
}

// findServer resolves a worker's server attribute: gpustack.NAME, or the
// name as a string, naming a gpustack block of the files.
func findServer(b *deploymentBlock, servers []*checkedDeployment, eval evaluator) *checkedDeployment {
	attr := b.Server
	if attr == nil {
		return nil
	}
	name := ""
	if tr, diags := hcl.AbsTraversalForExpr(attr.Expr); !diags.HasErrors() && len(tr) == 2 && tr.RootName() == "gpustack" {
		if step, ok := tr[1].(hcl.TraverseAttr); ok {
			name = step.Name
		}
	}
	if name == "" {
		s, ok := eval.str(attr, "server", "a reference to a gpustack block, for example server = gpustack.prod")
		if !ok {
			return nil
		}
		name = s
	}
	var known []string
	for _, s := range servers {
		if s.Name == name {
			return s
		}
		known = append(known, "gpustack."+s.Name)
	}
	declared := "The files declare no gpustack block"
	if len(known) > 0 {
		declared = "The files declare " + strings.Join(known, ", ")
	}
	eval.errorf(attr, "Unknown server", "No gpustack block is named %q. %s. A worker joins a server of the same files: write server = gpustack.NAME.", name, declared)
	return nil
}

// followServer gives a worker without version its server's image.
func (c *checker) followServer(d *Deployment, b *deploymentBlock, server *checkedDeployment) (*catalog.Release, catalog.Engine, bool) {
	if b.Variant != nil || b.Image != nil {
		c.errorAt(b.DefRange, "Variant or image without version",
			"Worker %q follows the version of gpustack.%s, and with it its variant and image. Remove variant and image, or write version too.", b.Name, server.Name)
	}
	d.Version, d.Variant, d.Image, d.Era = server.Version, server.Variant, server.Image, server.Era
	d.VersionFollowsServer = true
	d.VersionRange = server.VersionRange
	if d.Version == "" {
		return nil, "", false
	}
	var rel *catalog.Release
	if r, ok := c.cat.Release(d.Version); ok {
		rel = &r
	}
	return rel, d.Era, d.Era != ""
}

// workerOptions decodes worker_port, worker_name and server_url.
func (c *checker) workerOptions(d *Deployment, b *deploymentBlock, out *checkedDeployment) {
	if p, ok := c.port(b.WorkerPort, "worker_port", fmt.Sprintf("worker_port = %d", DefaultWorkerPort)); ok {
		d.ContainerPort = p
		out.portRange = b.WorkerPort.Expr.Range()
	} else if c.eval.present(b.WorkerPort) {
		out.portBad = true
	}
	d.WorkerName = d.Name
	if s, ok := c.eval.str(b.WorkerName, "worker_name", `a name, for example worker_name = "gpu1"`); ok {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\n/") {
			c.eval.errorf(b.WorkerName, "Invalid worker name",
				`%q cannot name a worker: write a name without spaces or "/", for example worker_name = "gpu1". It is the name the server lists the worker under.`, s)
		} else {
			d.WorkerName = s
		}
	}
	if s, ok := c.eval.str(b.ServerURL, "server_url", `a URL, for example server_url = "http://10.0.0.5"`); ok {
		if norm, err := parseServerURL(s); err != nil {
			c.eval.errorf(b.ServerURL, "Invalid server URL", "%s. Write the URL the worker reaches its server at, for example server_url = \"http://10.0.0.5\".", err)
		} else {
			d.ServerURL = norm
		}
	}
}

func parseServerURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	if u.User != nil {
		return "", fmt.Errorf("%q: a server URL takes no user or password", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("%q: a server URL is scheme, host and port only", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// checkWorkerSettings refuses, in a worker's args and env, what
// gpustack-deploy passes itself.
func (c *checker) checkWorkerSettings(args []Value, argsAttr *hcl.Attribute, env map[string]Value, envAttr *hcl.Attribute) {
	for i, a := range args {
		flag, _, _ := strings.Cut(a.S, "=")
		for _, f := range workerFlags {
			if flag == f.flag || (f.short != "" && flag == f.short) {
				c.errorAt(elementRange(argsAttr, i), "Flag set by gpustack-deploy",
					"A worker's %s is set by gpustack-deploy, the same on every recreate (a worker recreated without its token cannot register, #5714). Remove it from args; write %s instead.", f.flag, f.instead)
			}
		}
	}
	for _, name := range sortedKeys(env) {
		for _, f := range workerFlags {
			if name == f.env {
				c.errorAt(keyRange(envAttr, name), "Variable set by gpustack-deploy",
					"A worker's %s is set by gpustack-deploy, the same on every recreate. Remove it from env; write %s instead.", name, f.instead)
			}
		}
	}
}

// serverOptions decodes api_key, admin_password and the rollout block of a
// gpustack block.
func (c *checker) serverOptions(d *Deployment, b *deploymentBlock) {
	d.APIKey = c.secretString(b.APIKey, "api_key", "an admin API key of the server (created in its UI under API Keys)")
	d.AdminPassword = c.secretString(b.AdminPassword, "admin_password", `the current password of the server's "admin" user`)
	if b.Rollout != nil {
		if n, ok := c.eval.integer(b.Rollout.MaxParallel, "max_parallel", "max_parallel = 2"); ok {
			if n < 1 {
				c.eval.errorf(b.Rollout.MaxParallel, "Invalid max_parallel",
					"max_parallel is how many workers are upgraded at once and must be at least 1, not %d. Write max_parallel = 1 to upgrade them one by one.", n)
			} else {
				d.MaxParallel = n
			}
		}
	}
}

// secretString decodes a credential: a non-empty string that comes from
// a sensitive variable. Nothing here may quote the value.
func (c *checker) secretString(attr *hcl.Attribute, name, what string) Value {
	s, ok := c.sensitiveString(attr, name, "opens the server's admin API")
	if !ok {
		return Value{}
	}
	if strings.TrimSpace(s) == "" {
		c.errorAt(attr.Expr.Range(), "Empty credential", "The variable %s reads from is empty. Give it %s.", name, what)
		return Value{}
	}
	return Value{S: s, Sensitive: true}
}

// sensitiveString evaluates attr, a string that must come from a
// sensitive variable because it does what says (holds credentials, say).
// ok is false when it is absent or an error was reported. The
// diagnostics never quote the value.
func (c *checker) sensitiveString(attr *hcl.Attribute, name, does string) (string, bool) {
	v, ok := c.eval.value(attr)
	if !ok {
		return "", false
	}
	r := attr.Expr.Range()
	raw, marks := v.UnmarkDeep()
	if _, sensitive := marks[sensitiveMark]; !sensitive {
		c.errorAt(r, "Secret in plain text",
			"%s %s but its value does not come from a sensitive variable, so it would be shown in plans and saved in plan files. "+
				"Declare variable %q { sensitive = true } and write %s = var.%s.", name, does, name, name, name)
		return "", false
	}
	s, err := convert.Convert(raw, cty.String)
	if err != nil {
		c.errorAt(r, "Incorrect attribute value type", "%s must be a string. Write %s = var.%s.", name, name, name)
		return "", false
	}
	return s.AsString(), true
}

// resolveCluster ties every worker to its server: the server's name, the
// URL it registers with, the address it is probed at; and checks what
// concerns both (versions, eras, the API key a v2 upgrade needs).
func resolveCluster(ds []*checkedDeployment, hosts []Host, eval evaluator) {
	byName := map[string]*checkedDeployment{}
	addr, remote := map[string]string{}, map[string]bool{}
	for _, h := range hosts {
		addr[h.Name] = h.Address
		remote[h.Name] = !strings.HasPrefix(h.DockerHost, "unix://")
	}
	for _, d := range ds {
		if !d.IsWorker() {
			byName[d.Name] = d
		}
		if a := addr[d.Host]; a != "" && !d.healthAddressSet {
			la, err := netip.ParseAddr(d.ListenAddress)
			switch {
			case d.HostNetwork() || (err == nil && la.IsUnspecified()):
				// A host's GPUStack is probed at the host's address.
				d.Health.Address = a
			case err == nil && la.IsLoopback() && remote[d.Host]:
				eval.add(&hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Health check on another machine's loopback",
					Detail: fmt.Sprintf("Deployment %q publishes its port on %s of host %q, which is another machine: gpustack-deploy probes /healthz from here, where that address is its own, so apply cannot verify it. "+
						"Publish where %s is reached (listen_address = \"0.0.0.0\", or the host's IP) or write health { address = \"...\" } for a tunnel.", d.Name, la, d.Host, a),
					Subject: d.DeclRange.Ptr()})
			}
		}
	}
	withWorkers := map[string][]*checkedDeployment{}
	for _, w := range ds {
		if !w.IsWorker() || w.server == nil {
			continue
		}
		s := byName[w.server.Name]
		w.Server = s.Name
		withWorkers[s.Name] = append(withWorkers[s.Name], w)
		if w.ServerURL == "" {
			w.ServerURL = serverURL(s, w, addr)
		}
		if w.ServerURL == "" {
			eval.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Server address unknown",
				Detail: fmt.Sprintf("Worker %q runs on host %q and its server %q on host %q, whose address the files do not give. "+
					"Write address = \"10.0.0.5\" (the address workers reach it at) in host %q, or server_url = \"http://...\" in the worker.", w.Name, w.Host, s.Name, s.Host, s.Host),
				Subject: w.DeclRange.Ptr()})
		}
		if w.VersionFollowsServer || w.Version == "" || s.Version == "" {
			continue
		}
		switch {
		case w.Era != "" && s.Era != "" && w.Era != s.Era:
			eval.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Worker of another era",
				Detail:  fmt.Sprintf("Worker %q runs %s and its server %s: v0.x and v2 workers and servers do not talk to each other. Remove version from the worker so that it follows its server.", w.Name, w.ImageTag(), s.ImageTag()),
				Subject: w.VersionRange.Ptr()})
		case w.ImageTag() != s.ImageTag():
			eval.add(&hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Worker version differs from its server",
				Detail:  fmt.Sprintf("Worker %q runs %s and its server %q runs %s. GPUStack wants workers on the server's version (v2.2+ logs a version mismatch). Remove version from the worker so that it follows the server.", w.Name, w.ImageTag(), s.Name, s.ImageTag()),
				Subject: w.VersionRange.Ptr()})
		}
	}
	for name, workers := range withWorkers {
		s := byName[name]
		if s.HasAPICredentials() || s.Era != catalog.EngineEmbeddedPostgres {
			continue
		}
		eval.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing api_key",
			Detail: fmt.Sprintf("gpustack.%s has %d worker(s). Before a worker is recreated, gpustack-deploy puts it in maintenance mode through the server's API, so that its model instances are not rescheduled, "+
				"and it waits until the server lists it READY. Create an admin API key in the server's UI, declare variable \"api_key\" { sensitive = true } and write api_key = var.api_key in gpustack %q "+
				"(or admin_password = var.admin_password, the admin user's password).", name, len(workers), name),
			Subject: s.DeclRange.Ptr()})
	}
}

// serverURL is where a worker reaches its server: the server host's
// address (loopback when both share a host), at the port GPUStack answers on.
func serverURL(s, w *checkedDeployment, addr map[string]string) string {
	host := addr[s.Host]
	if host == "" && s.Host == w.Host {
		host = "127.0.0.1"
		if la, err := netip.ParseAddr(s.ListenAddress); err == nil && !la.IsUnspecified() {
			host = la.String()
		}
	}
	if host == "" {
		return ""
	}
	port := s.HealthPort()
	u := "http://" + net.JoinHostPort(host, strconv.Itoa(port))
	if port == 80 {
		u = "http://" + hostForURL(host)
	}
	return u
}

func hostForURL(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// RegistrationToken is the token a server's file sets for its workers:
// `--token`/`-t` in args (either form) or GPUSTACK_TOKEN in env, always
// from a sensitive variable. ok is false when the file sets none: the
// server then keeps the token it generated in its data volume.
func (d Deployment) RegistrationToken() (Value, bool) {
	for i, a := range d.Args {
		flag, inline, hasInline := strings.Cut(a.S, "=")
		if flag != "--token" && flag != "-t" {
			continue
		}
		if hasInline {
			return Value{S: inline, Sensitive: a.Sensitive}, inline != ""
		}
		if i+1 < len(d.Args) {
			return d.Args[i+1], d.Args[i+1].S != ""
		}
	}
	if v, ok := d.Env["GPUSTACK_TOKEN"]; ok && v.S != "" {
		return v, true
	}
	return Value{}, false
}
