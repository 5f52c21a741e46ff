package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// dump renders every field of d as stable text for golden files. Sensitive
// values print as (sensitive); absolute paths under root print relative.
func dump(d *Desired, root string) string {
	var b strings.Builder
	rel := func(s string) string { return strings.ReplaceAll(s, root, "$TESTDATA") }
	fmt.Fprintf(&b, "catalog_file: %q\n", rel(d.CatalogFile))
	for _, h := range d.Hosts {
		fmt.Fprintf(&b, "host %s docker_host=%q range=%s", h.Name, h.DockerHost, rangeText(h.DeclRange))
		if h.Address != "" {
			fmt.Fprintf(&b, " address=%q", h.Address)
		}
		if h.TLS != nil {
			fmt.Fprintf(&b, " tls ca=%q cert=%q key=%q", rel(h.TLS.CA), rel(h.TLS.Cert), rel(h.TLS.Key))
		}
		b.WriteString("\n")
	}
	for _, x := range d.Deployments {
		fmt.Fprintf(&b, "\ndeployment %s/%s\n", x.Host, x.Name)
		field := func(name, format string, args ...any) {
			fmt.Fprintf(&b, "  %-15s %s\n", name, fmt.Sprintf(format, args...))
		}
		field("decl_range", "%s", rangeText(x.DeclRange))
		// Cluster fields print only when set, so that the goldens of
		// files without workers do not list them.
		if x.IsWorker() {
			field("role", "worker server=%q server_url=%q worker_name=%q follows_server=%t", x.Server, x.ServerURL, x.WorkerName, x.VersionFollowsServer)
		}
		if x.APIKey.S != "" {
			field("api_key", "%s", valueText(x.APIKey))
		}
		if x.AdminPassword.S != "" {
			field("admin_password", "%s", valueText(x.AdminPassword))
		}
		if x.MaxParallel > 1 {
			field("max_parallel", "%d", x.MaxParallel)
		}
		field("version", "%q", x.Version)
		field("version_range", "%s", rangeText(x.VersionRange))
		field("variant", "%q", x.Variant)
		field("era", "%s", x.Era)
		field("image", "%q", x.Image)
		field("image_ref", "%q", x.ImageRef())
		field("container_name", "%q", x.ContainerName)
		field("port", "%d", x.Port)
		field("container_port", "%d", x.ContainerPort)
		field("listen_address", "%q", x.ListenAddress)
		args := make([]string, len(x.Args))
		for i, a := range x.Args {
			args[i] = valueText(a)
		}
		field("args", "[%s]", strings.Join(args, ", "))
		field("env", "{%s}", mapText(len(x.Env), func(yield func(k, v string)) {
			for k, v := range x.Env {
				yield(k, valueText(v))
			}
		}))
		field("labels", "{%s}", mapText(len(x.Labels), func(yield func(k, v string)) {
			for k, v := range x.Labels {
				yield(k, fmt.Sprintf("%q", v))
			}
		}))
		field("restart", "%q", x.Restart)
		if x.ExternalDatabase() {
			field("database_url", "%s scheme=%s sensitive=%t", valueText(x.DatabaseURL), x.DatabaseScheme, x.DatabaseURL.Sensitive)
		}
		field("data", "%s", volumeText(&x.Data, rel))
		field("cache", "%s", volumeText(x.Cache, rel))
		// The engine options print only when set, so that the goldens of
		// files that use none of them do not list their defaults.
		if x.NetworkMode != NetworkBridge {
			field("network_mode", "%q health_port=%d", x.NetworkMode, x.HealthPort())
		}
		if !x.GPUs.IsZero() {
			field("gpus", "all=%t count=%d ids=%q (%s)", x.GPUs.All, x.GPUs.Count, x.GPUs.IDs, x.GPUs)
		}
		if x.Runtime != "" {
			field("runtime", "%q", x.Runtime)
		}
		if x.Privileged {
			field("privileged", "true")
		}
		if x.IpcMode != "" {
			field("ipc_mode", "%q", x.IpcMode)
		}
		if x.ShmSize != 0 {
			field("shm_size", "%d", x.ShmSize)
		}
		for _, dev := range x.Devices {
			field("device", "%q", dev.String())
		}
		for _, m := range x.Mounts {
			field("mount", "%s volume=%q host_path=%q target=%q read_only=%t source=%q range=%s",
				m.Label, m.Volume, rel(m.HostPath), m.Target, m.ReadOnly, rel(m.Source()), rangeText(m.Range))
		}
		p := x.Policy
		field("policy", "allow_dev=%t allow_prerelease=%t allow_floating=%t allow_downgrade=%t pull=%s",
			p.AllowDev, p.AllowPrerelease, p.AllowFloating, p.AllowDowngrade, p.Pull)
		backup := fmt.Sprintf("dir=%q before_upgrade=%t keep=%d", rel(x.Backup.Dir), x.Backup.BeforeUpgrade, x.Backup.Keep)
		if x.Backup.Method != "" {
			backup += " method=" + x.Backup.Method
		}
		if x.Backup.ExternalAcknowledged {
			backup += " external=acknowledged"
		}
		if x.Backup.ToolImage != "" {
			backup += fmt.Sprintf(" tool_image=%q", x.Backup.ToolImage)
		}
		field("backup", "%s", backup)
		field("health", "timeout=%s address=%q", x.Health.Timeout, x.Health.Address)
	}
	return b.String()
}

func valueText(v Value) string {
	if v.Sensitive {
		return v.String()
	}
	return fmt.Sprintf("%q", v.S)
}

func mapText(n int, each func(yield func(k, v string))) string {
	items := make([]string, 0, n)
	each(func(k, v string) { items = append(items, fmt.Sprintf("%q = %s", k, v)) })
	sort.Strings(items)
	return strings.Join(items, ", ")
}

func volumeText(v *Volume, rel func(string) string) string {
	if v == nil {
		return "none"
	}
	return fmt.Sprintf("name=%q host_path=%q path=%q source=%q range=%s", v.Name, rel(v.HostPath), v.Path, rel(v.Source()), rangeText(v.Range))
}

func rangeText(r hcl.Range) string {
	if r.Filename == "" {
		return "-"
	}
	return r.String()
}

// diagText renders diagnostics one a line: "file:line,col-col: Summary; Detail",
// warnings prefixed with "warning: ".
func diagText(diags hcl.Diagnostics, root string) string {
	var b strings.Builder
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning {
			b.WriteString("warning: ")
		}
		loc := "<no location>"
		if d.Subject != nil {
			loc = d.Subject.String()
		}
		fmt.Fprintf(&b, "%s: %s; %s\n", loc, d.Summary, strings.ReplaceAll(d.Detail, root, "$TESTDATA"))
	}
	return b.String()
}
