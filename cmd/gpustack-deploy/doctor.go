package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/doctor"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/schema"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// maxOthers bounds how many further containers on a data volume are read.
const maxOthers = 5

func runDoctor(ctx context.Context, s stdio, args []string) int {
	var (
		c         common
		name      string
		names     []string
		backupDir string
		asJSON    bool
		tail      int
	)
	fs := newFlagSet("doctor", "Explain what is wrong with each deployment of the files, or with any GPUStack container named\n"+
		"with --container (also one started by hand with docker run), and rank the ways back, best first,\n"+
		"each as commands to run. doctor changes nothing; to read a volume no container mounts it creates\n"+
		"a helper container that is never started and removes it again.\n\n"+
		"Exit status: 0 when everything is healthy, 1 when doctor finds a problem or a risk (any warning)\n"+
		"or cannot run.",
		"gpustack-deploy doctor -f gpustack.hcl\n  gpustack-deploy doctor --container gpustack --backup-dir ./backups --deployment prod", s)
	c.register(fs)
	fs.StringVar(&name, "container", "", "diagnose this container by name, without configuration files")
	fs.StringArrayVar(&names, "deployment", nil, "with -f: only this deployment (repeatable); with --container: whose backups --backup-dir holds")
	fs.StringVar(&backupDir, "backup-dir", "", "with --container: the backup directory to choose a backup from (needs --deployment)")
	fs.BoolVar(&asJSON, "json", false, "print the reports as a JSON array")
	fs.IntVar(&tail, "tail", 200, "log lines to read from each container")
	if code, done := parse(fs, args, s); done {
		return code
	}
	if tail < 1 {
		return errorf(s, "--tail must be at least 1, got %d", tail)
	}
	var (
		reports []doctor.Report
		code    int
	)
	if name != "" {
		if len(c.files) > 0 {
			return errorf(s, "--container diagnoses a container without files: leave out -f, or leave out --container to diagnose the files' deployments")
		}
		if (backupDir == "") != (len(names) == 0) || len(names) > 1 {
			return errorf(s, "--backup-dir and --deployment go together: backups live in <backup-dir>/<deployment>")
		}
		r, ok := diagnoseContainer(ctx, s, &c, name, backupDir, names, tail)
		if !ok {
			return exitError
		}
		reports = []doctor.Report{r}
	} else {
		if backupDir != "" {
			return errorf(s, "--backup-dir is for --container; with -f each deployment's backup block says where its backups are")
		}
		reports, code = diagnoseFiles(ctx, s, &c, names, tail)
		if code != exitOK {
			return code
		}
	}
	if asJSON {
		if err := doctor.JSON(s.out, reports...); err != nil {
			return errorf(s, "%v", err)
		}
	} else {
		doctor.Text(s.out, reports...)
	}
	for _, r := range reports {
		if !r.Healthy {
			return exitError
		}
	}
	return exitOK
}

// diagnoseFiles diagnoses every deployment of the files (or those named).
func diagnoseFiles(ctx context.Context, s stdio, c *common, names []string, tail int) ([]doctor.Report, int) {
	l, ok := c.load(s)
	if !ok {
		return nil, exitError
	}
	targets, err := selectDeployments(l.desired.Deployments, names)
	if err != nil {
		return nil, errorf(s, "%v", err)
	}
	engines, closeAll, err := c.connect(ctx, l.desired)
	if err != nil {
		return nil, errorf(s, "%v", err)
	}
	defer closeAll()
	obs, err := c.observe(ctx, engines, targets)
	if err != nil {
		return nil, errorf(s, "%v", err)
	}
	var reports []doctor.Report
	for _, d := range targets {
		od, eng := obs.Deployments[d.Name], engines[d.Host]
		in := doctor.Input{
			Deployment: d.Name, Host: d.Host, Container: od.Container, Database: od.Database,
			ConfigFile: d.DeclRange.Filename, Files: c.paths(), ConfigVersion: d.Version, ConfigVariant: d.Variant,
			Data: d.Data.Source(), DataBind: d.Data.HostPath != "", Worker: d.IsWorker(),
		}
		if d.Cache != nil {
			in.Cache = d.Cache.Source()
		}
		skip := ""
		if ct := od.Container; ct != nil {
			skip = ct.ID
			in.Image, in.LogTail = imageAndLog(ctx, s, eng, ct.ID, ct.Image, ct.ImageID, tail)
		}
		in.Others = othersOnVolume(ctx, s, eng, in.Data, skip, d.Name, tail)
		if od.Database.Status == observe.DBUnsupported {
			in.LegacySQLite = legacyFromVolume(ctx, s, eng, d, od.Container)
		}
		in.Backups, in.BackupDir = existingBackups(s, d.Backup.Dir, d.Name)
		reports = append(reports, doctor.Diagnose(in, l.catalog))
	}
	return reports, exitOK
}

// diagnoseContainer diagnoses one container by name, with no file.
func diagnoseContainer(ctx context.Context, s stdio, c *common, name, backupDir string, names []string, tail int) (doctor.Report, bool) {
	eng, err := engine.Dial(ctx, config.DefaultHost, c.dockerHost)
	if err != nil {
		errorf(s, "%v", err)
		return doctor.Report{}, false
	}
	defer eng.Close()
	ct, err := eng.InspectContainer(ctx, name)
	if err != nil {
		errorf(s, "%v", err)
		return doctor.Report{}, false
	}
	if ct == nil {
		errorf(s, "no container named %q on the Docker host (docker ps -a lists them)", name)
		return doctor.Report{}, false
	}
	oc := toObserved(ct, "")
	in := doctor.Input{Host: config.DefaultHost, Container: &oc}
	for _, m := range ct.Mounts {
		if m.Destination == spec.DataDir {
			in.Data, in.DataBind = mountSource(m), m.Type == "bind"
		}
	}
	in.Cache = cacheMount(ct)
	switch {
	case !oc.Running() || !eng.IsLocal():
	case len(oc.Ports) > 0:
		addr := oc.Ports[0].HostIP
		if addr == "" || addr == "0.0.0.0" || addr == "::" {
			addr = "127.0.0.1"
		}
		oc.Health = observe.Probe(ctx, addr, oc.Ports[0].HostPort, 2*time.Second)
	case oc.Run.NetworkMode == config.NetworkHost:
		// On the host network GPUStack listens on its --port on the host.
		oc.Health = observe.Probe(ctx, "127.0.0.1", listenPort(ct), 2*time.Second)
	}
	tmp, err := os.MkdirTemp("", "gpustack-deploy-doctor-")
	if err != nil {
		errorf(s, "temporary directory: %v", err)
		return doctor.Report{}, false
	}
	defer os.RemoveAll(tmp)
	in.Database = observe.ReadDatabaseFrom(ctx, eng, ct.ID, spec.DataDir, tmp, schema.Options{CountRows: true})
	if in.Database.Status == observe.DBUnsupported {
		in.LegacySQLite = readLegacy(ctx, eng, ct.ID, spec.DataDir)
	}
	in.Image, in.LogTail = imageAndLog(ctx, s, eng, ct.ID, ct.Image, ct.ImageID, tail)
	in.Others = othersOnVolume(ctx, s, eng, in.Data, ct.ID, "", tail)
	if backupDir != "" {
		in.Deployment = names[0]
		in.Backups, in.BackupDir = existingBackups(s, backupDir, names[0])
	}
	return doctor.Diagnose(in, catalog.Default()), true
}

// imageAndLog reads the image's version label and the end of the log.
// Failures are reported and leave the diagnosis with less to go by.
func imageAndLog(ctx context.Context, s stdio, eng *engine.Client, id, ref, imageID string, tail int) (*doctor.Image, []string) {
	img := &doctor.Image{Ref: ref}
	if info, err := eng.InspectImage(ctx, imageID); err != nil {
		fmt.Fprintf(s.err, "Warning: %v\n", err)
	} else if info != nil {
		img.Version, img.Env = info.Version, info.Env
	}
	out, err := eng.Logs(ctx, id, strconv.Itoa(tail))
	if err != nil {
		fmt.Fprintf(s.err, "Warning: %v\n", err)
		return img, nil
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line = strings.TrimRight(line, "\r"); line != "" {
			lines = append(lines, line)
		}
	}
	return img, lines
}

// othersOnVolume returns the other containers that mount the data volume,
// helpers left out. The engine's volume filter matches volume names and
// bind sources.
func othersOnVolume(ctx context.Context, s stdio, eng *engine.Client, source, skip, deployment string, tail int) []doctor.Other {
	if source == "" {
		return nil
	}
	list, err := eng.ListByVolume(ctx, source)
	if err != nil {
		fmt.Fprintf(s.err, "Warning: %v\n", err)
		return nil
	}
	var found []*engine.Container
	for _, ct := range list {
		if ct.ID == skip || ct.Labels[spec.LabelRole] == spec.RoleHelper {
			continue
		}
		for _, m := range ct.Mounts {
			if mountSource(m) == source {
				found = append(found, ct)
				break
			}
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	if len(found) > maxOthers {
		fmt.Fprintf(s.err, "Warning: %d containers mount %s; reading the first %d\n", len(found), source, maxOthers)
		found = found[:maxOthers]
	}
	var out []doctor.Other
	for _, ct := range found {
		img, lines := imageAndLog(ctx, s, eng, ct.ID, ct.Image, ct.ImageID, tail)
		out = append(out, doctor.Other{Container: toObserved(ct, deployment), Image: *img, LogTail: lines})
	}
	return out
}

// legacyFromVolume reads database.db beside v2's PostgreSQL, through the
// deployment's container or a helper that is never started.
func legacyFromVolume(ctx context.Context, s stdio, eng *engine.Client, d config.Deployment, ct *observe.Container) *observe.Database {
	if ct != nil {
		for _, m := range ct.Mounts {
			if m.Destination == spec.DataDir && m.Source == d.Data.Source() {
				return readLegacy(ctx, eng, ct.ID, spec.DataDir)
			}
		}
	}
	id, err := eng.CreateHelper(ctx, d.Name, engine.HelperMount{Volume: d.Data.Name, HostPath: d.Data.HostPath, Target: "/data", ReadOnly: true})
	if err != nil {
		fmt.Fprintf(s.err, "Warning: %v\n", err)
		return nil
	}
	defer func() { _ = eng.RemoveContainer(context.WithoutCancel(ctx), id) }()
	return readLegacy(ctx, eng, id, "/data")
}

// readLegacy inspects dataDir/database.db in container id; nil when absent.
func readLegacy(ctx context.Context, eng observe.FileReader, id, dataDir string) *observe.Database {
	found, _, err := eng.Stat(ctx, id, dataDir+"/database.db")
	if err != nil || !found {
		return nil
	}
	tmp, err := os.MkdirTemp("", "gpustack-deploy-doctor-")
	if err != nil {
		return &observe.Database{Status: observe.DBUnknown, Engine: catalog.EngineSQLite, Reason: err.Error()}
	}
	defer os.RemoveAll(tmp)
	size, err := observe.CopySQLite(ctx, eng, id, dataDir, tmp)
	if err != nil {
		return &observe.Database{Status: observe.DBUnknown, Engine: catalog.EngineSQLite, Reason: err.Error()}
	}
	snap, err := schema.Inspect(filepath.Join(tmp, "database.db"), schema.Options{CountRows: true})
	if err != nil {
		return &observe.Database{Status: observe.DBUnknown, Engine: catalog.EngineSQLite, Size: size, Reason: err.Error()}
	}
	return &observe.Database{Status: observe.DBRead, Engine: catalog.EngineSQLite, Revision: snap.Revision, Tables: snap.Tables, Rows: snap.Rows, Size: size}
}

// existingBackups lists the backups in dir/deployment without creating
// the directory, and returns the store's absolute path.
func existingBackups(s stdio, dir, deployment string) ([]backup.Manifest, string) {
	if dir == "" {
		return nil, "" // a worker: no database, no backups
	}
	path, err := filepath.Abs(filepath.Join(dir, deployment))
	if err != nil {
		path = filepath.Join(dir, deployment)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, path
	}
	list, err := listBackups(dir, deployment)
	if err != nil {
		fmt.Fprintf(s.err, "Warning: %v\n", err)
		return nil, path
	}
	return list, path
}

// toObserved converts an engine container the way observe does; managed
// means it carries the deployment label (any deployment when "").
func toObserved(ct *engine.Container, deployment string) observe.Container {
	c := observe.Container{
		ID: ct.ID, Name: ct.Name, Image: ct.Image, ImageID: ct.ImageID, State: ct.State, ExitCode: ct.ExitCode,
		StartedAt: ct.StartedAt, Labels: ct.Labels, Args: ct.Args, Env: ct.Env, Restart: ct.Restart, Run: ct.Run,
	}
	if deployment == "" {
		c.Managed = ct.Labels[spec.LabelDeployment] != ""
	} else {
		c.Managed = ct.Labels[spec.LabelDeployment] == deployment
	}
	for _, m := range ct.Mounts {
		c.Mounts = append(c.Mounts, observe.Mount{Source: mountSource(m), Destination: m.Destination, ReadOnly: m.ReadOnly})
	}
	for _, p := range ct.Ports {
		c.Ports = append(c.Ports, observe.Port(p))
	}
	sort.Slice(c.Ports, func(i, j int) bool { return c.Ports[i].HostPort < c.Ports[j].HostPort })
	return c
}

func mountSource(m engine.Mount) string {
	if m.Type == "bind" {
		return m.Source
	}
	return m.Name
}

// cacheMount finds the model cache mount: at --cache-dir or
// GPUSTACK_CACHE_DIR when set, else at the data directory's cache/.
func cacheMount(ct *engine.Container) string {
	want := []string{config.CachePathPostgres}
	for i, a := range ct.Args {
		if v, ok := strings.CutPrefix(a, "--cache-dir="); ok {
			want = append(want, v)
		} else if a == "--cache-dir" && i+1 < len(ct.Args) {
			want = append(want, ct.Args[i+1])
		}
	}
	for _, kv := range ct.Env {
		if v, ok := strings.CutPrefix(kv, "GPUSTACK_CACHE_DIR="); ok {
			want = append(want, v)
		}
	}
	for _, m := range ct.Mounts {
		for _, w := range want {
			if filepath.Clean(m.Destination) == filepath.Clean(w) {
				return mountSource(m)
			}
		}
	}
	return ""
}

// listenPort is the port GPUStack listens on in ct: --port, else
// GPUSTACK_PORT, else 80.
func listenPort(ct *engine.Container) int {
	for i, a := range ct.Args {
		v, ok := strings.CutPrefix(a, "--port=")
		if !ok && a == "--port" && i+1 < len(ct.Args) {
			v, ok = ct.Args[i+1], true
		}
		if p, err := strconv.Atoi(v); ok && err == nil {
			return p
		}
	}
	for _, kv := range ct.Env {
		if v, ok := strings.CutPrefix(kv, "GPUSTACK_PORT="); ok {
			if p, err := strconv.Atoi(v); err == nil {
				return p
			}
		}
	}
	return config.DefaultPort
}
