package observe

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/schema"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// PreviousSuffix is appended to a container's name while a replace keeps the
// old container aside, so that a failed upgrade can go back to it.
const PreviousSuffix = "-gsd-previous"

// Engines maps a host name to its client.
type Engines map[string]*engine.Client

// Observe snapshots every deployment. Hosts are observed concurrently; an
// error on one host fails the whole observation and names the host.
func Observe(ctx context.Context, engines Engines, deployments []config.Deployment, opts ...Option) (*Observed, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	byHost := map[string][]config.Deployment{}
	for _, d := range deployments {
		byHost[d.Host] = append(byHost[d.Host], d)
	}
	out := &Observed{Deployments: map[string]*Deployment{}}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs = map[string]error{}
	)
	for host, ds := range byHost {
		eng, ok := engines[host]
		if !ok {
			return nil, fmt.Errorf("no connection to docker host %q", host)
		}
		wg.Add(1)
		go func(host string, ds []config.Deployment) {
			defer wg.Done()
			for _, d := range ds {
				od, err := observeDeployment(ctx, eng, d, o)
				mu.Lock()
				if err != nil {
					errs[host] = fmt.Errorf("observe %s on host %s: %w", d.Name, host, err)
				} else {
					out.Deployments[d.Name] = od
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}(host, ds)
	}
	wg.Wait()
	for _, host := range sortedNames(errs) {
		return nil, errs[host]
	}
	return out, nil
}

func observeDeployment(ctx context.Context, eng *engine.Client, d config.Deployment, o options) (*Deployment, error) {
	od := &Deployment{Name: d.Name, Host: d.Host}
	ct, err := eng.InspectContainer(ctx, d.ContainerName)
	if err != nil {
		return nil, err
	}
	od.Container = fromEngine(ct, d.Name)
	adopt(od.Container, d.Name, o.adoptions)
	prev, err := eng.InspectContainer(ctx, d.ContainerName+PreviousSuffix)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.Labels[spec.LabelDeployment] == d.Name {
		od.Previous = fromEngine(prev, d.Name)
	}
	img, err := eng.InspectImage(ctx, d.ImageRef())
	if err != nil {
		return nil, err
	}
	if img != nil {
		od.Image = &Image{Ref: d.ImageRef(), ID: img.ID, Version: img.Version}
	}
	if od.Data, err = observeVolume(ctx, eng, d.Name, d.Data); err != nil {
		return nil, err
	}
	if d.Cache != nil {
		if od.Cache, err = observeVolume(ctx, eng, d.Name, *d.Cache); err != nil {
			return nil, err
		}
	}
	switch {
	case d.IsWorker():
		// A worker keeps no database; its identity is its data volume.
		od.Database = Database{Status: DBAbsent}
	case od.Data != nil:
		od.Database = readDatabase(ctx, eng, d, od)
	default:
		od.Database = Database{Status: DBAbsent}
	}
	if d.IsWorker() || o.tokens[d.Name] {
		observeToken(ctx, eng, d, od)
	}
	if d.ExternalDatabase() {
		od.External = readExternal(ctx, eng, d)
	}
	if err := measureVolumes(ctx, eng, d, od, o); err != nil {
		od.UsageError = err.Error()
	}
	if od.Container.Running() && od.Container.Managed && (eng.IsLocal() || !isLoopback(d.Health.Address)) {
		// A remote host's containers are probed at the host's address
		// (host { address }); its loopback is not this machine's.
		od.Container.Health = Probe(ctx, d.Health.Address, d.HealthPort(), time.Second)
	}
	return od, nil
}

func isLoopback(addr string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && a.IsLoopback()
}

func fromEngine(ct *engine.Container, deployment string) *Container {
	if ct == nil {
		return nil
	}
	c := &Container{
		ID: ct.ID, Name: ct.Name, Image: ct.Image, ImageID: ct.ImageID, State: ct.State,
		ExitCode: ct.ExitCode, StartedAt: ct.StartedAt, Labels: ct.Labels,
		Managed: ct.Labels[spec.LabelDeployment] == deployment,
		Args:    ct.Args, Env: ct.Env, Restart: ct.Restart, Run: ct.Run,
	}
	for _, m := range ct.Mounts {
		src := m.Name
		if m.Type == "bind" {
			src = m.Source
		}
		c.Mounts = append(c.Mounts, Mount{Source: src, Destination: m.Destination, ReadOnly: m.ReadOnly})
	}
	for _, p := range ct.Ports {
		c.Ports = append(c.Ports, Port(p))
	}
	sort.Slice(c.Ports, func(i, j int) bool { return c.Ports[i].HostPort < c.Ports[j].HostPort })
	return c
}

func observeVolume(ctx context.Context, eng *engine.Client, deployment string, v config.Volume) (*Volume, error) {
	if v.HostPath != "" {
		if eng.IsLocal() {
			if _, err := os.Stat(v.HostPath); os.IsNotExist(err) {
				return nil, nil
			}
		}
		return &Volume{Source: v.HostPath, Bind: true}, nil
	}
	vol, err := eng.InspectVolume(ctx, v.Name)
	if err != nil || vol == nil {
		return nil, err
	}
	return &Volume{Source: v.Name, Managed: vol.Labels[spec.LabelDeployment] == deployment}, nil
}

// Probe asks GPUStack's /healthz on the published port. It returns "ok" or
// a short description of what went wrong.
func Probe(ctx context.Context, address string, port int, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + address + ":" + strconv.Itoa(port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "unhealthy: " + err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "unreachable"
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "unhealthy: HTTP " + strconv.Itoa(resp.StatusCode)
	}
	return "ok"
}

// readDatabase copies the database out of the data volume and inspects the
// copy. It reads through the deployment's own container when that mounts
// the data volume, and otherwise through a helper container that is never
// started. Failures become DBUnknown with a reason, not errors: a plan can
// still be shown.
func readDatabase(ctx context.Context, eng *engine.Client, d config.Deployment, od *Deployment) Database {
	id, dataDir, cleanup, err := volumeReader(ctx, eng, d, od.Container)
	if err != nil {
		return Database{Status: DBUnknown, Reason: err.Error()}
	}
	defer cleanup()
	pgDir, stale, err := FindPGDir(ctx, eng, id, dataDir)
	if err != nil {
		return Database{Status: DBUnknown, Reason: err.Error()}
	}
	if pgDir != "" {
		db := ReadPostgres(ctx, eng, pgTarget(d, od, id, dataDir), pgDir)
		db.StalePGDirs = stale
		db.SQLiteBeside, _, _ = eng.Stat(ctx, id, dataDir+"/database.db")
		return db
	}
	// A copy taken while GPUStack writes can be torn; a second copy is
	// cheap and tells a busy database from a damaged one.
	var db Database
	for attempt := 0; attempt < 3; attempt++ {
		dir, err := os.MkdirTemp("", "gpustack-deploy-observe-")
		if err != nil {
			return Database{Status: DBUnknown, Reason: fmt.Sprintf("temporary directory: %v", err)}
		}
		db = ReadDatabaseFrom(ctx, eng, id, dataDir, dir, schema.Options{CountRows: true})
		os.RemoveAll(dir)
		if db.Status != DBUnknown || ctx.Err() != nil {
			break
		}
	}
	return db
}

// pgTarget says how to read the embedded PostgreSQL of a deployment whose
// data volume container id mounts at dataDir: through psql when that is
// GPUStack's running container, otherwise with the image of the container
// that wrote the data (the kept-aside one, or the desired image).
func pgTarget(d config.Deployment, od *Deployment, id, dataDir string) PGTarget {
	t := PGTarget{ID: id, DataDir: dataDir, Deployment: d.Name, Data: d.Data}
	ct := od.Container
	if ct != nil && ct.ID == id && ct.Running() {
		t.Running, t.Port = true, PGPort(ct.Args, ct.Env)
	}
	switch {
	case ct != nil && ct.ImageID != "":
		t.Image = ct.ImageID
	case od.Previous != nil && od.Previous.ImageID != "":
		t.Image = od.Previous.ImageID
	case od.Image != nil:
		t.Image = od.Image.ID
	}
	return t
}

// volumeReader returns a container through which the data volume can be
// read, the data directory inside it, and a cleanup function.
func volumeReader(ctx context.Context, eng *engine.Client, d config.Deployment, ct *Container) (string, string, func(), error) {
	if ct != nil {
		for _, m := range ct.Mounts {
			if m.Destination == spec.DataDir && m.Source == d.Data.Source() {
				return ct.ID, spec.DataDir, func() {}, nil
			}
		}
	}
	id, err := eng.CreateHelper(ctx, d.Name, engine.HelperMount{Volume: d.Data.Name, HostPath: d.Data.HostPath, Target: "/data", ReadOnly: true})
	if err != nil {
		return "", "", nil, err
	}
	return id, "/data", func() { _ = eng.RemoveContainer(context.WithoutCancel(ctx), id) }, nil
}

// FileReader reads files out of a container (running or not) through its mounts.
type FileReader interface {
	Stat(ctx context.Context, id, path string) (bool, int64, error)
	CopyFile(ctx context.Context, id, src, dst string) (int64, error)
}

// ReadDatabaseFrom inspects the GPUStack data directory dataDir inside the
// container id, copying the SQLite files into the local directory tmp.
func ReadDatabaseFrom(ctx context.Context, eng FileReader, id, dataDir, tmp string, opts schema.Options) Database {
	pg, _, err := eng.Stat(ctx, id, dataDir+"/postgresql/data/PG_VERSION")
	if err != nil {
		return Database{Status: DBUnknown, Reason: err.Error()}
	}
	if pg {
		done, _, _ := eng.Stat(ctx, id, dataDir+"/run/state_migration_done")
		return Database{
			Status: DBUnsupported, Engine: catalog.EngineEmbeddedPostgres, MigrationDone: done,
			Reason: "the data volume holds GPUStack v2's embedded PostgreSQL, which this version of gpustack-deploy cannot inspect yet",
		}
	}
	found, _, err := eng.Stat(ctx, id, dataDir+"/database.db")
	if err != nil {
		return Database{Status: DBUnknown, Reason: err.Error()}
	}
	if !found {
		return Database{Status: DBAbsent}
	}
	size, err := CopySQLite(ctx, eng, id, dataDir, tmp)
	if err != nil {
		return Database{Status: DBUnknown, Engine: catalog.EngineSQLite, Reason: err.Error()}
	}
	snap, err := schema.Inspect(filepath.Join(tmp, "database.db"), opts)
	if err != nil {
		return Database{Status: DBUnknown, Engine: catalog.EngineSQLite, Size: size, Reason: fmt.Sprintf("read the database copy: %v", err)}
	}
	return Database{Status: DBRead, Engine: catalog.EngineSQLite, Revision: snap.Revision, Tables: snap.Tables, Rows: snap.Rows, Size: size}
}

// SQLiteFiles are the files of a SQLite database in GPUStack's data dir.
var SQLiteFiles = []string{"database.db", "database.db-wal", "database.db-shm"}

// CopySQLite copies database.db and, when present, its -wal and -shm files
// from dataDir inside container id into the local directory dst. It returns
// the total size.
func CopySQLite(ctx context.Context, eng FileReader, id, dataDir, dst string) (int64, error) {
	var total int64
	for i, name := range SQLiteFiles {
		n, err := eng.CopyFile(ctx, id, dataDir+"/"+name, filepath.Join(dst, name))
		if err != nil && i > 0 && engine.IsNotFound(err) {
			continue
		}
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

func sortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
