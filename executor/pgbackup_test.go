package executor

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

const (
	v2OldHead = "8ad0f94c92e8" // v2.1.2
	v2NewHead = "c4d7e8f9a0b1" // v2.2.3
	v2OldRef  = "gpustack/gpustack:v2.1.2"
	v2NewRef  = "gpustack/gpustack:v2.2.3"
)

var _ PGEngine = (*pgFake)(nil)

// pgFake adds what PostgreSQL backups need to the fake engine: psql answers
// by the revision the container's database is at, tar streams of the
// local volume directories (every entry owned by 9999), and the one-off
// scripts of a pg-files restore carried out on the local directories.
type pgFake struct {
	*fakeEngine
	// revisions maps an image to the revision its psql reports.
	revisions map[string]string
	models    int64
	tools     []string
	ownedIn   []string
	helpers   int
}

func (p *pgFake) ExecStream(_ context.Context, id string, o engine.ExecOptions) (int, error) {
	p.mu.Lock()
	c, err := p.get(id)
	p.mu.Unlock()
	if err != nil {
		return -1, err
	}
	rev := p.revisions[c.ct.Image]
	r, ok := catalog.Default().Revision(rev)
	if !ok {
		return 2, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "S|8000000\nC|alembic_version|version_num\nN|alembic_version|1\nR|%s\n", rev)
	for table, cols := range r.Probe().Tables {
		for _, col := range cols {
			fmt.Fprintf(&b, "C|%s|%s\n", table, col)
		}
		n := int64(0)
		if table == "models" {
			n = p.models
		}
		fmt.Fprintf(&b, "N|%s|%d\n", table, n)
	}
	_, err = io.WriteString(o.Stdout, b.String())
	return 0, err
}

func (p *pgFake) Owner(context.Context, string, string) (int, int, error) { return 9999, 9999, nil }

func (p *pgFake) CopyOut(_ context.Context, id, src string) (io.ReadCloser, error) {
	p.mu.Lock()
	local, err := p.local(id, src)
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	root := path.Base(src)
	err = filepath.Walk(local, func(file string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(local, file)
		name := root + "/" + filepath.ToSlash(rel)
		if rel == "." {
			name = root
		}
		hdr := &tar.Header{Name: name, Mode: int64(info.Mode().Perm()), Uid: 9999, Gid: 9999, ModTime: info.ModTime()}
		if info.IsDir() {
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
			return tw.WriteHeader(hdr)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(b))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return io.NopCloser(&buf), nil
}

func (p *pgFake) CopyInOwned(_ context.Context, id, dir string, r io.Reader) error {
	p.mu.Lock()
	p.record("CopyInOwned %s %s", id, dir)
	local, err := p.local(id, dir)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if hdr.Uid != 9999 {
			return fmt.Errorf("entry %s is owned by %d", hdr.Name, hdr.Uid)
		}
		target := filepath.Join(local, filepath.FromSlash(hdr.Name))
		p.ownedIn = append(p.ownedIn, hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, b, 0o600); err != nil {
				return err
			}
		}
	}
}

// CreateHelper adds a created container that mounts the given volumes.
func (p *pgFake) CreateHelper(_ context.Context, _ string, mounts ...engine.HelperMount) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	id := "h" + strconv.Itoa(p.nextID)
	ct := engine.Container{ID: id, Name: "helper-" + id, State: "created", Labels: map[string]string{spec.LabelRole: spec.RoleHelper}}
	for _, m := range mounts {
		ct.Mounts = append(ct.Mounts, engine.Mount{Type: "volume", Name: m.Volume, Destination: m.Target})
	}
	p.containers[id] = &fakeContainer{ct: ct, exited: make(chan struct{})}
	p.helpers++
	return id, nil
}

// RunTool carries out the restore's scripts on the volume's directory.
func (p *pgFake) RunTool(_ context.Context, t engine.Tool) (engine.ToolResult, error) {
	p.mu.Lock()
	dir := p.volumes[t.Mounts[0].Volume]
	p.mu.Unlock()
	live := filepath.Join(dir, strings.TrimPrefix(t.Args[0], spec.DataDir))
	switch t.Script {
	case prepareScript:
		p.tools = append(p.tools, "prepare")
		if err := os.RemoveAll(live + restoreSuffix); err != nil {
			return engine.ToolResult{}, err
		}
		return engine.ToolResult{}, os.MkdirAll(filepath.Dir(live), 0o755)
	case emptyScript:
		p.tools = append(p.tools, "empty")
		entries, err := os.ReadDir(dir)
		if err != nil {
			return engine.ToolResult{}, err
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return engine.ToolResult{}, err
			}
		}
		return engine.ToolResult{}, nil
	case swapScript:
		p.tools = append(p.tools, "swap")
		if err := os.RemoveAll(live); err != nil {
			return engine.ToolResult{}, err
		}
		return engine.ToolResult{}, os.Rename(live+restoreSuffix, live)
	}
	return engine.ToolResult{ExitCode: 1, Stderr: []byte("script not emulated")}, nil
}

// writePGData fills dir/postgresql/data with a small cluster whose
// pg_control says state, and the v2 secrets.
func writePGData(t *testing.T, dir string, state backup.PGState, marker string) {
	t.Helper()
	pg := filepath.Join(dir, "postgresql", "data")
	for _, d := range []string{"global", "base/1"} {
		if err := os.MkdirAll(filepath.Join(pg, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	control := make([]byte, 8192)
	binary.LittleEndian.PutUint32(control[8:], 1300)
	binary.LittleEndian.PutUint32(control[16:], uint32(state))
	binary.LittleEndian.PutUint32(control[296:], crc32.Checksum(control[:296], crc32.MakeTable(crc32.Castagnoli)))
	files := map[string][]byte{
		"PG_VERSION": []byte("15\n"), "global/pg_control": control, "base/1/1259": []byte(marker),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(pg, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range backup.PGSecretFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name+"-value"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// v2Upgrade is a deployment running v2.1.2 about to move to v2.2.3.
func newV2Upgrade(t *testing.T, state backup.PGState) (*upgrade, *pgFake) {
	t.Helper()
	f := newFakeEngine(t)
	pf := &pgFake{fakeEngine: f, revisions: map[string]string{v2OldRef: v2OldHead, v2NewRef: v2NewHead}, models: 4}
	backups := filepath.Join(t.TempDir(), "backups")
	old := deployment(f, "v2.1.2", backups)
	d := deployment(f, "v2.2.3", backups)
	old.Variant, d.Variant = "", ""
	u := &upgrade{f: f, d: d, out: &bytes.Buffer{}}
	u.data = f.addVolume(d.Data.Name)
	writePGData(t, u.data, state, "before the upgrade")
	oldSpec := spec.For(old, v2OldHead)
	u.old = f.addContainer(oldSpec, "running")
	f.behaviors[v2OldRef] = behavior{healthy: true, version: "v2.1.2"}
	od := observed(t, f, d, oldSpec, u.old, v2OldHead)
	od.Database.Engine, od.Database.PGDir = catalog.EngineEmbeddedPostgres, "postgresql/data"
	u.p = planFor(t, d, od)
	u.x = &Executor{
		Engines: map[string]Engine{config.DefaultHost: pf}, Catalog: catalog.Default(), StateDir: t.TempDir(),
		Out: u.out, Now: func() time.Time { return now }, StopGrace: time.Second, PollInterval: 20 * time.Millisecond,
	}
	return u, pf
}

func TestV2UpgradeTakesPGFilesBackup(t *testing.T) {
	u, pf := newV2Upgrade(t, backup.PGShutdowned)
	if a, ok := u.p.Deployments[0].Action(plan.ActionBackupDatabase); !ok {
		t.Fatalf("no backup planned:\n%s", u.p)
	} else if a.Method != "" && a.Method != plan.MethodPGFiles {
		t.Fatalf("planned method %q", a.Method)
	}
	u.f.behaviors[v2NewRef] = behavior{healthy: true, version: "v2.2.3"}
	results, err := u.apply(t)
	if err != nil {
		t.Fatalf("Apply: %v\n%s", err, u.out)
	}
	if !results[0].Verified {
		t.Fatalf("results %+v", results)
	}
	store, err := backup.Open(u.d.Backup.Dir, u.d.Name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := store.Get(results[0].Backup)
	if err != nil {
		t.Fatal(err)
	}
	if m.GetMethod() != plan.MethodPGFiles || !m.Verified || m.Revision != v2OldHead || m.Rows["models"] != 4 || m.PGVersion != "15" || m.ImageID != "sha256:"+v2OldRef {
		t.Errorf("manifest %+v", m)
	}
	var names []string
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	if want := []string{"jwt_secret_key", "postgres_root_pass", "postgresql-data.tar", "token"}; !reflect.DeepEqual(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	if len(pf.tools) != 0 {
		t.Errorf("an upgrade that succeeds ran restore scripts: %v", pf.tools)
	}
}

func TestV2UpgradeRefusesUncleanPGFiles(t *testing.T) {
	// A cluster that was killed, not stopped: the copy would need WAL
	// replay, so the backup is refused and nothing changes.
	u, _ := newV2Upgrade(t, backup.PGInProduction)
	u.f.behaviors[v2NewRef] = behavior{healthy: true, version: "v2.2.3"}
	_, err := u.apply(t)
	if err == nil || !strings.Contains(err.Error(), "not shut down cleanly") {
		t.Fatalf("Apply: %v, want a refused backup", err)
	}
	store, _ := backup.Open(u.d.Backup.Dir, u.d.Name)
	if list, _ := store.List(); len(list) != 0 {
		t.Errorf("backups listed: %+v", list)
	}
	for _, c := range u.f.Calls() {
		if strings.HasPrefix(c, "CreateContainer") {
			t.Errorf("the upgrade went on: %s", c)
		}
	}
	if ct, _ := u.f.InspectContainer(context.Background(), u.old); ct.State != "running" {
		t.Errorf("the old container is %s, want running again", ct.State)
	}
}

func TestV2FailedMigrationRestoresPGFiles(t *testing.T) {
	u, pf := newV2Upgrade(t, backup.PGShutdowned)
	code := int64(1)
	u.f.behaviors[v2NewRef] = behavior{
		logs: []string{"RuntimeError: Database migration failed: boom"}, exit: &code,
		onStart: func(data string) { writePGData(t, data, backup.PGInProduction, "half migrated") },
	}
	results, err := u.apply(t)
	if err == nil {
		t.Fatal("Apply succeeded")
	}
	if !results[0].RolledBack {
		t.Fatalf("not rolled back: %+v\n%s", results[0], u.out)
	}
	if !reflect.DeepEqual(pf.tools, []string{"prepare", "swap"}) {
		t.Errorf("restore scripts %v, want prepare then swap", pf.tools)
	}
	b, err := os.ReadFile(filepath.Join(u.data, "postgresql/data/base/1/1259"))
	if err != nil || string(b) != "before the upgrade" {
		t.Errorf("PGDATA after the rollback holds %q (%v), want the backup's", b, err)
	}
	if _, err := os.Stat(filepath.Join(u.data, "postgresql/data"+restoreSuffix)); !os.IsNotExist(err) {
		t.Errorf("the restore copy was left behind: %v", err)
	}
	for _, name := range pf.ownedIn {
		if !strings.HasPrefix(name, "data"+restoreSuffix+"/") {
			t.Errorf("CopyInOwned wrote %s outside the restore copy", name)
		}
	}
	ct, _ := u.f.InspectContainer(context.Background(), u.d.ContainerName)
	if ct == nil || ct.ID != u.old || ct.State != "running" {
		t.Errorf("the previous container is not running again: %+v", ct)
	}
}

func TestBackupMethodDispatch(t *testing.T) {
	f := newFakeEngine(t)
	d := deployment(f, "v2.2.3", t.TempDir())
	data := f.addVolume(d.Data.Name)
	f.addContainer(spec.For(d, v2NewHead), "running")
	r := &run{x: &Executor{Catalog: catalog.Default()}, eng: f, d: d, res: &Result{}}
	ctx := context.Background()
	if m, err := r.backupMethod(ctx, ""); err != nil || m != plan.MethodSQLite {
		t.Errorf("empty volume: %q %v, want sqlite", m, err)
	}
	writePGData(t, data, backup.PGShutdowned, "x")
	if m, err := r.backupMethod(ctx, ""); err != nil || m != plan.MethodPGFiles {
		t.Errorf("PostgreSQL volume: %q %v, want pg-files", m, err)
	}
	if m, err := r.backupMethod(ctx, plan.MethodVolume); err != nil || m != plan.MethodVolume {
		t.Errorf("asked for volume: %q %v", m, err)
	}
	if err := os.Rename(filepath.Join(data, "postgresql"), filepath.Join(data, "postgres")); err != nil {
		t.Fatal(err)
	}
	if m, err := r.backupMethod(ctx, ""); err != nil || m != plan.MethodPGFiles {
		t.Errorf("v2.0.0's postgres/data: %q %v, want pg-files", m, err)
	}
	if dir, err := r.findPGDir(ctx); err != nil || dir != "postgres/data" {
		t.Errorf("live PGDATA %q %v, want postgres/data", dir, err)
	}
	if _, ok := any(f).(PGEngine); ok {
		t.Fatal("the plain fake is a PGEngine; the next check means nothing")
	}
	if _, err := r.takeBackup(ctx, plan.MethodPGFiles, backup.Manifest{}); err == nil {
		t.Errorf("a pg-files backup through an engine that cannot keep owners was attempted")
	}
}

// TestVolumeBackupOfSQLiteRoundTrip is the way back of the v0.x → v2 jump:
// a volume backup of a v0.x data volume, restored over a volume v2 wrote
// into, gives back exactly the old files.
func TestVolumeBackupOfSQLiteRoundTrip(t *testing.T) {
	u := newUpgrade(t, nil)
	pf := &pgFake{fakeEngine: u.f}
	if err := os.WriteFile(filepath.Join(u.data, ".hidden"), []byte("dotfile"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &run{x: u.x, eng: pf, d: u.d, pd: u.p.Deployments[0], res: &Result{}}
	ctx := context.Background()
	a := plan.Action{Kind: plan.ActionBackupDatabase, From: oldHead, Method: plan.MethodVolume}
	if err := r.backupDatabase(ctx, a); err != nil {
		t.Fatalf("backup: %v\n%s", err, u.out)
	}
	m := r.backup
	if m.GetMethod() != plan.MethodVolume || !m.Verified || m.Engine != "sqlite" || m.Revision != oldHead || m.Rows == nil {
		t.Fatalf("manifest %+v", m)
	}
	// v2 writes its PostgreSQL beside the SQLite file; the restore must
	// remove it and bring back everything else, dotfiles included.
	writePGData(t, u.data, backup.PGShutdowned, "v2")
	if err := os.Remove(filepath.Join(u.data, ".hidden")); err != nil {
		t.Fatal(err)
	}
	if err := r.RestoreInto(ctx, *m, u.old, spec.DataDir); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if _, err := os.Stat(filepath.Join(u.data, "postgresql")); !os.IsNotExist(err) {
		t.Errorf("v2's postgresql/ survived the restore: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(u.data, ".hidden")); err != nil || string(b) != "dotfile" {
		t.Errorf(".hidden after the restore: %q %v", b, err)
	}
	if rev := revisionOf(t, filepath.Join(u.data, "database.db")); rev != oldHead {
		t.Errorf("database.db after the restore is at %s, want %s", rev, oldHead)
	}
	if !reflect.DeepEqual(pf.tools, []string{"empty"}) {
		t.Errorf("tools %v, want the volume emptied once", pf.tools)
	}
	if pf.helpers != 2 {
		t.Errorf("%d helpers, want 2: the volume is read and written through one that mounts it alone", pf.helpers)
	}
}
