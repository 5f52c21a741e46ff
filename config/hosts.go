package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

var hostNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// decodeHosts checks the host blocks of every file: names and docker_host
// addresses are unique, the address is unix://, tcp:// or ssh://, and tls
// (tcp:// only) names files that exist and can be read.
func decodeHosts(blocks []*hostBlock, eval evaluator) []Host {
	var out []Host
	byName := map[string]*hostBlock{}
	byAddr := map[string]*hostBlock{}
	for _, b := range blocks {
		h := Host{Name: b.Name, DeclRange: b.DefRange}
		ok := true
		if !hostNameRe.MatchString(b.Name) {
			eval.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid host name",
				Detail:  fmt.Sprintf(`%q cannot name a host: use 1 to 63 lowercase letters, digits, "_", "." and "-", starting with a letter or digit, for example host "gpu1".`, b.Name),
				Subject: b.DefRange.Ptr()})
			ok = false
		}
		if first, dup := byName[b.Name]; dup {
			eval.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate host",
				Detail:  fmt.Sprintf("Host %q is already declared at %s. Give each host block its own name.", b.Name, lineRef(first.DefRange)),
				Subject: b.DefRange.Ptr()})
			continue
		}
		byName[b.Name] = b
		if !eval.present(b.DockerHost) {
			eval.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing docker_host",
				Detail:  `A host block names the Docker engine's address, for example docker_host = "ssh://admin@gpu1.example.com", "tcp://gpu1.example.com:2376" or "unix:///var/run/docker.sock".`,
				Subject: b.DefRange.Ptr()})
			ok = false
		} else if s, good := eval.str(b.DockerHost, "docker_host", `an address, for example docker_host = "ssh://admin@gpu1"`); !good {
			ok = false
		} else if norm, err := ParseDockerHost(s); err != nil {
			eval.errorf(b.DockerHost, "Invalid docker_host", "%s. Write unix:///var/run/docker.sock, tcp://HOST:2376 or ssh://USER@HOST.", err)
			ok = false
		} else {
			h.DockerHost = norm
			if first, dup := byAddr[norm]; dup {
				eval.errorf(b.DockerHost, "Duplicate docker_host",
					"Host %q has the same docker_host %s as host %q, declared at %s. Name each engine once and point the deployments at that host.",
					b.Name, norm, first.Name, lineRef(first.DefRange))
				ok = false
			} else {
				byAddr[norm] = b
			}
		}
		if eval.present(b.Address) {
			if a, good := eval.str(b.Address, "address", `an IP address or host name, for example address = "10.0.0.5"`); good {
				if norm, err := parseHostAddress(a); err != nil {
					eval.errorf(b.Address, "Invalid host address", "%s. Write the IP address or DNS name workers and gpustack-deploy reach this host at, for example address = \"10.0.0.5\".", err)
					ok = false
				} else {
					h.Address = norm
				}
			} else {
				ok = false
			}
		}
		if h.Address == "" && h.DockerHost != "" {
			// The engine's machine is where its host-network containers
			// answer: ssh://admin@gpu1 and tcp://gpu1:2376 mean gpu1.
			if u, err := url.Parse(h.DockerHost); err == nil && (u.Scheme == "ssh" || u.Scheme == "tcp") {
				h.Address = u.Hostname()
			}
		}
		for i, t := range b.TLS {
			if i > 0 {
				eval.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate tls block",
					Detail:  fmt.Sprintf("Only one tls block is allowed in a host block; the first is at %s.", lineRef(b.TLS[0].DefRange)),
					Subject: t.DefRange.Ptr()})
				ok = false
				continue
			}
			if h.DockerHost != "" && !strings.HasPrefix(h.DockerHost, "tcp://") {
				eval.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "TLS needs tcp://",
					Detail:  fmt.Sprintf("A tls block applies to tcp:// addresses only; host %q is reached through %s. Remove the tls block, or use tcp://HOST:2376.", b.Name, h.DockerHost),
					Subject: t.DefRange.Ptr()})
				ok = false
				continue
			}
			files, good := decodeTLS(t, eval)
			ok = ok && good
			h.TLS = files
		}
		if ok {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// decodeTLS checks a tls block: ca_file is required, cert_file and
// key_file come together. Paths are relative to the declaring file.
func decodeTLS(t *tlsBlock, eval evaluator) (*TLSFiles, bool) {
	ok := true
	file := func(attr *hcl.Attribute, name string, key bool) string {
		if !eval.present(attr) {
			return ""
		}
		s, good := eval.str(attr, name, fmt.Sprintf(`a path, for example %s = "./certs/%s.pem"`, name, strings.TrimSuffix(name, "_file")))
		if !good {
			ok = false
			return ""
		}
		p := s
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(attr.Range.Filename), p)
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		info, err := os.Stat(p)
		if err == nil && info.IsDir() {
			eval.errorf(attr, "Cannot read TLS file", "%s is a directory. Name a PEM file, relative to this file.", p)
			ok = false
			return ""
		}
		if err == nil {
			var f *os.File
			if f, err = os.Open(p); err == nil {
				f.Close()
			}
		}
		if err != nil {
			eval.errorf(attr, "Cannot read TLS file", "%s. Name a PEM file that exists and this user can read, relative to this file.", err)
			ok = false
			return ""
		}
		if key && info.Mode().Perm()&0o077 != 0 {
			eval.add(&hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "TLS key readable by others",
				Detail:  fmt.Sprintf("Users besides its owner can read %s, the private key that controls this Docker engine. Run chmod 600 on it.", p),
				Subject: attr.Expr.Range().Ptr()})
		}
		return p
	}
	f := &TLSFiles{
		CA:   file(t.CAFile, "ca_file", false),
		Cert: file(t.CertFile, "cert_file", false),
		Key:  file(t.KeyFile, "key_file", true),
	}
	if t.CAFile == nil {
		eval.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing ca_file",
			Detail:  `A tls block names the CA that signed the daemon's certificate, for example ca_file = "./certs/ca.pem".`,
			Subject: t.DefRange.Ptr()})
		ok = false
	}
	if (t.CertFile == nil) != (t.KeyFile == nil) {
		eval.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Client certificate without key",
			Detail:  `cert_file and key_file go together: write both (cert_file = "./certs/cert.pem", key_file = "./certs/key.pem") or neither.`,
			Subject: t.DefRange.Ptr()})
		ok = false
	}
	return f, ok
}

// ParseDockerHost checks a Docker engine address and returns it in a
// canonical form: unix:///abs/path, tcp://host:port, ssh://[user@]host[:port].
func ParseDockerHost(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("%q is not an address with a scheme", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: an address takes no query or fragment", s)
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return "", fmt.Errorf("%q: a unix:// address names an absolute socket path (three slashes: unix:///var/run/docker.sock)", s)
		}
		return "unix://" + filepath.Clean(u.Path), nil
	case "tcp":
		if u.User != nil {
			return "", fmt.Errorf("%q: a tcp:// address takes no user", s)
		}
		if u.Path != "" && u.Path != "/" {
			return "", fmt.Errorf("%q: a tcp:// address takes no path", s)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" {
			return "", fmt.Errorf("%q: a tcp:// address names a host and a port, for example tcp://gpu1:2376", s)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
		}
		return "tcp://" + net.JoinHostPort(strings.ToLower(host), port), nil
	case "ssh":
		if u.Path != "" && u.Path != "/" {
			return "", fmt.Errorf("%q: an ssh:// address takes no path (the remote docker CLI finds its engine)", s)
		}
		if _, set := u.User.Password(); set {
			return "", fmt.Errorf("ssh:// address of %s: a password cannot be given in the address; use an ssh key or agent", u.Hostname())
		}
		host := u.Hostname()
		if host == "" || strings.HasPrefix(host, "-") {
			return "", fmt.Errorf("%q: an ssh:// address names a host, for example ssh://admin@gpu1", s)
		}
		if u.User != nil && (u.User.Username() == "" || strings.HasPrefix(u.User.Username(), "-")) {
			return "", fmt.Errorf("%q: invalid user", s)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, p)
			}
		}
		out := "ssh://"
		if u.User != nil {
			out += u.User.Username() + "@"
		}
		return out + strings.ToLower(u.Host), nil
	default:
		return "", fmt.Errorf("%q: scheme %s is not supported; use unix://, tcp:// or ssh://", s, u.Scheme)
	}
}

// resolveHost sets the deployment's host from its host attribute, which
// must name a declared host block (or "default", the environment).
func resolveHost(d *checkedDeployment, attr *hcl.Attribute, hosts []Host, eval evaluator) {
	if !eval.present(attr) {
		return
	}
	s, ok := eval.str(attr, "host", `a host block's name, for example host = "gpu1"`)
	if !ok {
		return
	}
	names := []string{}
	for _, h := range hosts {
		if h.Name == s {
			d.Host = s
			return
		}
		names = append(names, fmt.Sprintf("%q", h.Name))
	}
	if s == DefaultHost {
		d.Host = s
		return
	}
	declared := "The files declare no host block"
	if len(names) > 0 {
		declared = "The files declare " + strings.Join(names, ", ")
	}
	eval.errorf(attr, "Unknown host",
		`No host block is named %q. %s; "default" (DOCKER_HOST) is always available. Declare host %q { docker_host = "ssh://USER@HOST" } or fix the name.`,
		s, declared, s)
}

var dnsNameRe = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)

// parseHostAddress checks a host's address: an IP address (returned in
// canonical form) or a DNS name (lowercased).
func parseHostAddress(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("%q: an address with a zone cannot be reached from other hosts", s)
		}
		return a.String(), nil
	}
	if len(s) > 253 || !dnsNameRe.MatchString(s) {
		return "", fmt.Errorf("%q is neither an IP address nor a DNS name", s)
	}
	return strings.ToLower(s), nil
}
