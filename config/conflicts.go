package config

import (
	"fmt"
	"net/netip"

	"github.com/hashicorp/hcl/v2"
)

// claim is something on a Docker host that one deployment owns.
type claim struct {
	owner *checkedDeployment
	what  string // "data" or "cache" for volumes
	path  string // host directory, for host_path volumes
	at    hcl.Range
}

// checkConflicts reports, on the later declaration, every name, container,
// volume, host directory or port that two deployments on one host claim.
func checkConflicts(ds []*checkedDeployment, diags *hcl.Diagnostics) {
	add := func(r hcl.Range, summary, format string, args ...any) {
		*diags = append(*diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  summary,
			Detail:   fmt.Sprintf(format, args...),
			Subject:  r.Ptr(),
		})
	}
	names := map[string]claim{}
	containers := map[string]claim{}
	volumes := map[string]claim{}
	databases := map[string]claim{}
	var dirs, ports []claim

	for _, d := range ds {
		// Names are unique across hosts: plans, status, --target, locks,
		// journals and backup directories are keyed by the name alone.
		key := d.Name
		if first, dup := names[key]; dup {
			add(d.DeclRange, "Duplicate deployment",
				"Deployment %q is declared twice; first declared at %s. Rename one of them: the name identifies the deployment's container and backups, on every host.",
				d.Name, lineRef(first.at))
			// Everything else of a duplicate would clash with the first too.
			continue
		}
		names[key] = claim{owner: d, at: d.DeclRange}

		key = d.Host + "\x00" + d.ContainerName
		if first, dup := containers[key]; d.containerBad {
		} else if dup {
			add(d.containerRange, "Container name already used",
				"Container name %q is also used by deployment %q, first declared at %s. Set container_name to another name.",
				d.ContainerName, first.owner.Name, lineRef(first.at))
		} else {
			containers[key] = claim{owner: d, at: d.containerRange}
		}

		vols := []struct {
			what string
			v    *Volume
		}{{"data", &d.Data}, {"cache", d.Cache}}
		for _, vol := range vols {
			if vol.v == nil {
				continue
			}
			c := claim{owner: d, what: vol.what, path: vol.v.HostPath, at: vol.v.Range}
			if vol.v.Name != "" {
				key := d.Host + "\x00" + vol.v.Name
				if first, dup := volumes[key]; dup && first.owner != d {
					add(vol.v.Range, "Volume already used",
						"Docker volume %q is also the %s volume of deployment %q, first declared at %s. Each deployment needs volumes of its own (a shared data directory breaks worker identity); give this one another name.",
						vol.v.Name, first.what, first.owner.Name, lineRef(first.at))
				} else if !dup {
					volumes[key] = c
				}
			}
			if vol.v.HostPath != "" {
				clash := false
				for _, first := range dirs {
					if first.owner == d || first.owner.Host != d.Host {
						continue
					}
					if rel := nesting(vol.v.HostPath, first.path); rel != "" {
						add(vol.v.Range, "Host directory already used",
							"%s %s %s, the %s directory of deployment %q, first declared at %s. Give each deployment directories of its own, neither inside the other.",
							vol.v.HostPath, rel, first.path, first.what, first.owner.Name, lineRef(first.at))
						clash = true
						break
					}
				}
				if !clash {
					dirs = append(dirs, c)
				}
			}
		}

		if url := d.DatabaseURL.S; url != "" {
			// Two servers migrating one database break it; the value is never shown.
			if first, dup := databases[url]; dup {
				add(d.databaseRange, "Database already used",
					"database_url names the same database as deployment %q, first declared at %s. Each GPUStack server needs a database of its own: give this one another database.",
					first.owner.Name, lineRef(first.at))
			} else {
				databases[url] = claim{owner: d, at: d.databaseRange}
			}
		}

		if d.portBad {
			continue
		}
		port, addr := hostPort(d.Deployment)
		for _, first := range ports {
			fport, faddr := hostPort(first.owner.Deployment)
			if first.owner.Host == d.Host && fport == port && overlap(faddr, addr) {
				if first.owner.IsWorker() {
					add(d.portRange, "Port already used",
						"Host port %d is also taken by worker %q, which listens on its worker_port %d on every address of the host, first declared at %s. Choose another port (worker_port for a worker).",
						port, first.owner.Name, fport, lineRef(first.at))
				} else if first.owner.HostNetwork() {
					add(d.portRange, "Port already used",
						"Host port %d is also taken by deployment %q, which uses the host's network and listens on its container_port %d on every address, first declared at %s. Choose another port.",
						port, first.owner.Name, fport, lineRef(first.at))
				} else {
					add(d.portRange, "Port already used",
						"Host port %d on %s is also published by deployment %q on %s, first declared at %s. Choose another port, or bind listen_address to another address.",
						port, addr, first.owner.Name, faddr, lineRef(first.at))
				}
				break
			}
		}
		ports = append(ports, claim{owner: d, at: d.portRange})
	}
}

// overlap reports whether ports bound on the two addresses collide: the same
// address, or either one the unspecified address (all interfaces).
func overlap(a, b string) bool {
	if a == b {
		return true
	}
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	return errA == nil && errB == nil && (pa.IsUnspecified() || pb.IsUnspecified())
}

// hostPort is the host port a deployment takes and the address it binds:
// the published port, or container_port on every address when the
// container shares the host's network.
func hostPort(d Deployment) (int, string) {
	if d.HostNetwork() {
		return d.ContainerPort, "0.0.0.0"
	}
	return d.Port, d.ListenAddress
}
