package doctor

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// dataDir is GPUStack's data directory inside the container.
const dataDir = "/var/lib/gpustack"

// hidden replaces argument values that look secret in rendered commands.
const hidden = "'<hidden>'"

// deploy is a gpustack-deploy command on the deployment's files.
func (d *diagnosis) deploy(sub string) string {
	files := d.in.Files
	if len(files) == 0 {
		files = []string{d.in.ConfigFile}
	}
	s := "gpustack-deploy " + sub
	for _, f := range files {
		s += " -f " + shellQuote(f)
	}
	return s
}

// setVersion is the edit of the file that pins a release.
func (d *diagnosis) setVersion(version, variant string) string {
	s := fmt.Sprintf("# in %s set version = %q", d.in.ConfigFile, version)
	switch {
	case variant != "":
		s += fmt.Sprintf(" and variant = %q", variant)
	case d.in.ConfigVariant != "":
		s += " and remove variant"
	}
	return s
}

// stopOthers stops the other containers that run on the data volume.
func (d *diagnosis) stopOthers() []string {
	var out []string
	for _, s := range d.others {
		if s.ct.Running() {
			out = append(out, "docker stop "+s.name())
		}
	}
	return out
}

// takeOver sets aside a hand-made container that holds the deployment's
// container name, so that apply and restore may create theirs.
func (d *diagnosis) takeOver() []string {
	s := d.primary
	if s == nil || s.ct.Managed {
		return nil
	}
	var out []string
	if s.ct.Running() {
		out = append(out, "docker stop "+s.name())
	}
	return append(out, fmt.Sprintf("docker rename %s %s-by-hand", s.name(), s.name()))
}

// repo is the image repository the deployment pulls from.
func (d *diagnosis) repo() string {
	if d.primary != nil && d.primary.image.Repository() != "" {
		return d.primary.image.Repository()
	}
	return "gpustack/gpustack"
}

// moveAside renames a directory of the data volume.
func (d *diagnosis) moveAside(from, to, imageTag string) string {
	if d.in.DataBind {
		return fmt.Sprintf("sudo mv %s %s", path.Join(d.in.Data, from), path.Join(d.in.Data, to))
	}
	return fmt.Sprintf("docker run --rm -v %s:%s --entrypoint sh %s:%s -c 'mv %s %s'", d.in.Data, dataDir, d.repo(), imageTag,
		path.Join(dataDir, from), path.Join(dataDir, to))
}

// rerun replaces the named container by one of another image with the
// same ports, mounts, arguments and environment names. The old container
// is renamed, not removed, so its log stays readable.
func (d *diagnosis) rerun(imageTag string) []string {
	s := d.primary
	var out []string
	if s.ct.Running() {
		out = append(out, "docker stop "+s.name())
	}
	out = append(out, fmt.Sprintf("docker rename %s %s-old", s.name(), s.name()))
	return append(out, dockerRun(s.ct, s.image.Env, d.repo()+":"+imageTag))
}

func (d *diagnosis) dockerRestore(m backup.Manifest) []string {
	s := d.primary
	out := d.stopOthers()
	if s.ct.Running() {
		out = append(out, "docker stop "+s.name())
	}
	out = append(out, fmt.Sprintf("docker cp %s:%s ./%s-data-before-restore", s.name(), dataDir, s.name()))
	var files []string
	for _, f := range m.Files {
		files = append(files, "/backup/"+f.Name)
	}
	if len(files) == 0 {
		files = []string{"/backup/" + backup.DatabaseName}
	}
	out = append(out, fmt.Sprintf("docker run --rm -v %s:%s -v %s:/backup:ro --entrypoint sh %s:%s -c 'cd %s && rm -f database.db-wal database.db-shm && cp %s .'",
		d.in.Data, dataDir, path.Join(d.in.BackupDir, m.ID), d.repo(), m.Version, dataDir, strings.Join(files, " ")))
	out = append(out, fmt.Sprintf("docker rename %s %s-old", s.name(), s.name()))
	return append(out, dockerRun(s.ct, s.image.Env, d.repo()+":"+m.Version))
}

// dockerRun writes the `docker run` that recreates ct with another image.
// Environment values are never written: `-e NAME` passes NAME from the
// shell; what the old image set itself (imageEnv) is left out. Argument
// values that look secret are hidden.
func dockerRun(ct *observe.Container, imageEnv []string, image string) string {
	parts := []string{"docker", "run", "-d", "--name", ct.Name}
	if ct.Restart != "" && ct.Restart != "no" {
		parts = append(parts, "--restart", ct.Restart)
	}
	for _, p := range ct.Ports {
		spec := strconv.Itoa(p.HostPort) + ":" + strconv.Itoa(p.ContainerPort)
		if p.HostIP != "" && p.HostIP != "0.0.0.0" && p.HostIP != "::" {
			spec = p.HostIP + ":" + spec
		}
		parts = append(parts, "-p", spec)
	}
	mounts := append([]observe.Mount(nil), ct.Mounts...)
	sort.Slice(mounts, func(i, j int) bool { return mounts[i].Destination < mounts[j].Destination })
	for _, m := range mounts {
		v := m.Source + ":" + m.Destination
		if m.ReadOnly {
			v += ":ro"
		}
		parts = append(parts, "-v", shellQuote(v))
	}
	parts = append(parts, runFlags(ct.Run)...)
	for _, name := range envNames(ct.Env, imageEnv) {
		parts = append(parts, "-e", name)
	}
	parts = append(parts, image)
	return strings.Join(append(parts, redactArgs(ct.Args)...), " ")
}

// runFlags are the docker run flags of the engine options a GPU
// deployment is run with: a recreated container without them would lose
// its GPUs, its network or its devices.
func runFlags(r spec.RunOptions) []string {
	r = r.Normalized()
	var out []string
	if r.NetworkMode != config.NetworkBridge {
		out = append(out, "--network", shellQuote(r.NetworkMode))
	}
	if g, ok := spec.GPUsOf(r.GPUs); ok && !g.IsZero() {
		gpus := g.String()
		if len(g.IDs) > 0 {
			// docker run reads --gpus as CSV: a list of IDs is quoted.
			gpus = `"` + gpus + `"`
		}
		out = append(out, "--gpus", shellQuote(gpus))
	}
	if r.Runtime != "" {
		out = append(out, "--runtime", shellQuote(r.Runtime))
	}
	if r.Privileged {
		out = append(out, "--privileged")
	}
	if r.IpcMode != "" {
		out = append(out, "--ipc", shellQuote(r.IpcMode))
	}
	if r.ShmSize != 0 {
		out = append(out, "--shm-size", strconv.FormatInt(r.ShmSize, 10))
	}
	for _, d := range r.Devices {
		out = append(out, "--device", shellQuote(d.String()))
	}
	return out
}

// envNames are the names of the GPUStack and Hugging Face variables the
// container was given; the rest comes from the image.
func envNames(env, imageEnv []string) []string {
	fromImage := map[string]bool{}
	for _, kv := range imageEnv {
		fromImage[kv] = true
	}
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !fromImage[kv] && (strings.HasPrefix(name, "GPUSTACK_") || strings.HasPrefix(name, "HF_")) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

var secretFlagRe = regexp.MustCompile(`(?i)token|password|secret|key|database-url`)

func redactArgs(args []string) []string {
	out := make([]string, 0, len(args))
	hideNext := false
	for _, a := range args {
		switch {
		case hideNext:
			out = append(out, hidden)
			hideNext = false
		case strings.HasPrefix(a, "-") && secretFlagRe.MatchString(a):
			if name, _, ok := strings.Cut(a, "="); ok {
				out = append(out, name+"="+hidden)
			} else {
				out = append(out, a)
				hideNext = true
			}
		default:
			out = append(out, shellQuote(a))
		}
	}
	return out
}

var safeWordRe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

func shellQuote(s string) string {
	if safeWordRe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var deploymentNameRe = regexp.MustCompile(`[^a-z0-9_-]+`)

// notes adds what a person needs beyond the options.
func (d *diagnosis) notes(healthy bool) []string {
	if d.in.ConfigFile != "" || d.primary == nil {
		return nil
	}
	var out []string
	if !healthy {
		out = append(out, "Commands that recreate the container hide secret-looking arguments as '<hidden>' and pass environment "+
			"variables by name (-e NAME takes the value from your shell): fill in or export them first.")
	}
	out = append(out, d.hclSuggestion())
	return out
}

// hclSuggestion is a file that would let gpustack-deploy manage the container.
func (d *diagnosis) hclSuggestion() string {
	s := d.primary
	name := d.in.Deployment
	if name == "" {
		name = strings.Trim(deploymentNameRe.ReplaceAllString(strings.ToLower(strings.TrimPrefix(s.name(), "gpustack-")), "-"), "-_")
		if name == "" {
			name = "server"
		}
	}
	rel, variant := d.suggestedRelease()
	lines := []string{
		"This container was started without gpustack-deploy. To manage it from a file (verified backups before upgrades, restore, rollback), write for example gpustack.hcl:",
		fmt.Sprintf("  gpustack %q {", name),
		fmt.Sprintf("    version = %q", rel.Tag),
	}
	if variant != "" {
		lines = append(lines, fmt.Sprintf("    variant = %q", variant))
	}
	if len(s.ct.Ports) > 0 && s.ct.Ports[0].HostPort != 80 {
		lines = append(lines, fmt.Sprintf("    port    = %d", s.ct.Ports[0].HostPort))
	}
	if d.in.Data != "" {
		attr := "name"
		if d.in.DataBind {
			attr = "host_path"
		}
		lines = append(lines, fmt.Sprintf("    volume \"data\" { %s = %q }", attr, d.in.Data))
	}
	if d.in.Cache != "" {
		attr := "name"
		if strings.HasPrefix(d.in.Cache, "/") {
			attr = "host_path"
		}
		lines = append(lines, fmt.Sprintf("    volume \"cache\" { %s = %q }", attr, d.in.Cache))
	}
	lines = append(lines, "  }",
		fmt.Sprintf("then stop and rename this container (docker rename %s %s-by-hand) and run gpustack-deploy plan: it never takes over a container it did not create.", s.name(), s.name()))
	return strings.Join(lines, "\n")
}

// suggestedRelease is the release a file for this container should pin:
// the one that wrote an intact database, the one of the backup to restore,
// or the one a fresh start would run.
func (d *diagnosis) suggestedRelease() (catalog.Release, string) {
	if d.dbGood {
		if rel, variant, ok := d.pinTarget(); ok {
			return rel, variant
		}
	}
	if m, ok := d.restoreCandidate(); ok {
		tag := catalog.ClassifyTag(m.Version)
		if rel, ok := d.cat.Release(tag.Base); ok {
			return rel, tag.Variant
		}
	}
	return d.freshTarget()
}
