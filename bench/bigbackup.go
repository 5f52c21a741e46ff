package main

import (
	"archive/tar"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	_ "github.com/mattn/go-sqlite3" // the "sqlite3" driver, to grow the database

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/executor"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/schema"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// minFreeBackup is the free space the backup section wants on every file
// system it writes to: the grown database in the volume, the local copy
// it is grown in, and at a time a raw copy, observe's temporary copy and a
// backup with its raw copy beside it.
const minFreeBackup = 6 << 30

// payloadTable is the table the database is grown with. The schema probe
// allows tables it does not know, so the revision and probe stay valid.
const payloadTable = "bench_payload"

// samplePeriod is the wall-clock stack sampler's period.
const samplePeriod = 2 * time.Millisecond

// Backup-throughput methods, measured alternately.
const (
	bkRaw    = iota // CopyFromContainer of database.db into a local file, fsync
	bkCLI           // gpustack-deploy backup -f
	bkInProc        // executor.TakeBackup in process, stack-sampled
	numBk
)

var bkKinds = [numBk]string{"raw copy", "backup", "TakeBackup"}

// backupResults are the figures of the backup section.
type backupResults struct {
	skipped  string   // why the section did not run ("" if it did)
	free     []string // free space where it writes, when checked
	revision string
	dbBytes  int64 // database.db in the volume, grown
	rows     int64 // rows of bench_payload
	blob     int   // bytes per row
	// growing the database (not timed for the figures)
	fill, copyIn time.Duration
	// timed runs
	raw, rawStop, rawStart []time.Duration
	cli                    series
	cliBefore, cliDown     []time.Duration // process start → "stopping" line → "started again" line
	cliAfter               []time.Duration // "started again" line → exit
	inProc, inProcStop     []time.Duration
	inProcStart            []time.Duration
	inProcCopy             []time.Duration // database.db copy, timed around CopyFile
	inProcProbes           []time.Duration // the -wal and -shm CopyFile calls that found nothing
	phases                 []map[string]time.Duration
	backupBytes            int64 // size of database.db inside the backup
}

// backupSection grows a v0.5.1 deployment's database to -backup-mib MiB
// and times, alternately, `gpustack-deploy backup`, a raw copy of the file
// and executor.TakeBackup in process.
func (b *bench) backupSection(ctx context.Context) (*backupResults, error) {
	res := &backupResults{blob: b.o.backupBlob}
	target := int64(b.o.backupMiB) << 20
	ok, err := b.checkFree(ctx, res, minFreeBackup)
	if err != nil {
		return nil, err
	}
	if !ok {
		stage("backup throughput: SKIPPED: %s", res.skipped)
		return res, nil
	}
	rel, ok := catalog.Default().Release(toVer)
	if !ok {
		return nil, fmt.Errorf("%s is not in the catalog", toVer)
	}
	res.revision = rel.Head

	stage("backup throughput: setting up one deployment at %s and growing its database to %d MiB", toTag, b.o.backupMiB)
	d, err := b.newDeployment("big", toVer, true)
	if err != nil {
		return nil, err
	}
	if err := b.setup(ctx, d); err != nil {
		return nil, err
	}
	if err := b.growDatabase(ctx, d, res, target); err != nil {
		return nil, err
	}
	stage("  %s: database.db %.1f MiB (%d rows of %d random bytes in %s), filled in %v, copied in in %v",
		d.name, float64(res.dbBytes)/(1<<20), res.rows, res.blob, payloadTable, res.fill.Round(time.Millisecond), res.copyIn.Round(time.Millisecond))

	eng, err := engine.Dial(ctx, config.DefaultHost, "")
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	stage("backup throughput: %d rounds of %s, %s and %s, alternating", b.o.backupRuns, bkKinds[bkRaw], bkKinds[bkCLI], bkKinds[bkInProc])
	for i := range b.o.backupRuns {
		var line []string
		for k := range numBk {
			m := (i + k) % numBk
			var d2 time.Duration
			switch m {
			case bkRaw:
				d2, err = b.rawCopy(ctx, d, res)
			case bkCLI:
				d2, err = b.cliBackup(ctx, d, res)
			case bkInProc:
				d2, err = b.inProcBackup(ctx, eng, d, res)
			}
			if err != nil {
				return nil, err
			}
			line = append(line, fmt.Sprintf("%s %v (%.0f MiB/s)", bkKinds[m], d2.Round(time.Millisecond), mibps(res.dbBytes, d2)))
		}
		stage("  round %d/%d: %s", i+1, b.o.backupRuns, strings.Join(line, ", "))
	}
	stage("backup throughput: removing the deployment")
	return res, b.teardown(ctx, d)
}

// checkFree records the free space of every directory the section writes
// to and says whether each has at least need bytes.
func (b *bench) checkFree(ctx context.Context, res *backupResults, need uint64) (bool, error) {
	free, short, err := b.freeSpace(ctx, need)
	if err != nil {
		return false, err
	}
	res.free = free
	if short != "" {
		res.skipped = fmt.Sprintf("%s, the backup section needs %.0f GiB (a %d MiB database in the volume, copies of it and backups)",
			short, float64(need)/(1<<30), b.o.backupMiB)
		return false, nil
	}
	return true, nil
}

// dbPath is the database inside the container.
const dbPath = spec.DataDir + "/database.db"

// growDatabase stops the deployment's container, copies database.db out,
// adds bench_payload with random blobs until the file holds target bytes,
// copies it back with the original owner and mode, starts the container
// and waits for /healthz.
func (b *bench) growDatabase(ctx context.Context, d *deployment, res *backupResults, target int64) error {
	grace := int(stopGrace / time.Second)
	if err := b.cli.ContainerStop(ctx, d.name, container.StopOptions{Timeout: &grace}); err != nil {
		return err
	}
	for _, suffix := range []string{"-journal", "-wal"} {
		_, err := b.cli.ContainerStatPath(ctx, d.name, dbPath+suffix)
		if err == nil {
			return fmt.Errorf("%s: %s%s exists after a clean stop; cannot grow the database safely", d.name, dbPath, suffix)
		}
		if !cerrdefs.IsNotFound(err) {
			return err
		}
	}
	local := filepath.Join(b.tmp, "grow-database.db")
	hdr, _, err := b.copyOut(ctx, d.name, dbPath, local, false)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if res.rows, err = fillPayload(local, target, b.o.backupBlob); err != nil {
		return fmt.Errorf("grow %s: %w", local, err)
	}
	res.fill = time.Since(t0)
	snap, err := schema.Inspect(local, schema.Options{})
	if err != nil {
		return err
	}
	if snap.Revision != res.revision {
		return fmt.Errorf("grown database: revision %q, want %q", snap.Revision, res.revision)
	}
	st, err := os.Stat(local)
	if err != nil {
		return err
	}
	res.dbBytes = st.Size()
	t0 = time.Now()
	if err := b.copyIn(ctx, d.name, spec.DataDir, local, hdr); err != nil {
		return err
	}
	res.copyIn = time.Since(t0)
	if err := os.Remove(local); err != nil {
		return err
	}
	if err := b.cli.ContainerStart(ctx, d.name, container.StartOptions{}); err != nil {
		return err
	}
	return waitHealthy(ctx, healthURL(d), 2*time.Minute)
}

// fillPayload adds bench_payload to the SQLite file at path and fills it
// with rows of blob random bytes until the file holds at least target
// bytes. Returns the number of rows.
func fillPayload(path string, target int64, blob int) (int64, error) {
	// Not persistent: the file stays in rollback-journal mode, as v0.5.1
	// keeps it.
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_journal_mode=OFF&_synchronous=OFF")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.Begin()
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`CREATE TABLE ` + payloadTable + `(id INTEGER PRIMARY KEY, blob BLOB)`); err != nil {
		return 0, err
	}
	var pageSize int64
	if err := tx.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		return 0, err
	}
	stmt, err := tx.Prepare(`INSERT INTO ` + payloadTable + `(blob) VALUES (?)`)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	var seed [32]byte
	copy(seed[:], "gpustack-deploy bench payload")
	rng := rand.NewChaCha8(seed)
	buf := make([]byte, blob)
	var rows int64
	for {
		for range 4096 {
			_, _ = rng.Read(buf)
			if _, err := stmt.Exec(buf); err != nil {
				return rows, err
			}
			rows++
		}
		var pages int64
		if err := tx.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
			return rows, err
		}
		if pages*pageSize >= target {
			break
		}
	}
	if err := stmt.Close(); err != nil {
		return rows, err
	}
	return rows, tx.Commit()
}

// copyOut copies the regular file src out of container ref into the local
// file dst through the Engine API (GET /containers/{id}/archive) and
// returns its tar header and size; with sync, dst is fsynced before it is
// closed.
func (b *bench) copyOut(ctx context.Context, ref, src, dst string, sync bool) (*tar.Header, int64, error) {
	rc, _, err := b.cli.CopyFromContainer(ctx, ref, src)
	if err != nil {
		return nil, 0, fmt.Errorf("copy %s out of %s: %w", src, ref, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		return nil, 0, fmt.Errorf("copy %s out of %s: %w", src, ref, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, 0, fmt.Errorf("copy %s out of %s: not a regular file", src, ref)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, tr)
	if err == nil && n != hdr.Size {
		err = fmt.Errorf("short copy: %d of %d bytes", n, hdr.Size)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, n, fmt.Errorf("copy %s out of %s: %w", src, ref, err)
	}
	return hdr, n, nil
}

// copyIn writes the local file src into dir inside container ref as the
// file hdr names, with hdr's owner and mode (PUT /containers/{id}/archive).
func (b *bench) copyIn(ctx context.Context, ref, dir, src string, hdr *tar.Header) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: hdr.Name, Mode: hdr.Mode, Uid: hdr.Uid, Gid: hdr.Gid, Size: st.Size(), ModTime: time.Now()})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	if err := b.cli.CopyToContainer(ctx, ref, dir, pr, container.CopyToContainerOptions{}); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("copy %s into %s: %w", hdr.Name, ref, err)
	}
	return nil
}

// rawCopy is the baseline: with the container stopped (timed apart), one
// CopyFromContainer of database.db into a local file, fsynced.
func (b *bench) rawCopy(ctx context.Context, d *deployment, res *backupResults) (time.Duration, error) {
	grace := int(stopGrace / time.Second)
	t0 := time.Now()
	if err := b.cli.ContainerStop(ctx, d.name, container.StopOptions{Timeout: &grace}); err != nil {
		return 0, err
	}
	stop := time.Since(t0)
	dst := filepath.Join(b.tmp, "raw-database.db")
	t0 = time.Now()
	_, n, err := b.copyOut(ctx, d.name, dbPath, dst, true)
	took := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if n != res.dbBytes {
		return 0, fmt.Errorf("raw copy: %d bytes, the database has %d", n, res.dbBytes)
	}
	t0 = time.Now()
	if err := b.cli.ContainerStart(ctx, d.name, container.StartOptions{}); err != nil {
		return 0, err
	}
	start := time.Since(t0)
	if err := os.Remove(dst); err != nil {
		return 0, err
	}
	if err := waitHealthy(ctx, healthURL(d), 2*time.Minute); err != nil {
		return 0, err
	}
	res.raw = append(res.raw, took)
	res.rawStop = append(res.rawStop, stop)
	res.rawStart = append(res.rawStart, start)
	return took, nil
}

// cliBackup times `gpustack-deploy backup -f` and splits it at its
// progress lines, checks the backup it wrote and removes it.
func (b *bench) cliBackup(ctx context.Context, d *deployment, res *backupResults) (time.Duration, error) {
	lines := &lineStamps{t0: time.Now()}
	x, err := b.toolOut(ctx, d, nil, lines, "backup")
	if err != nil {
		return 0, err
	}
	if x.exit != 0 {
		return 0, fmt.Errorf("backup of %s: exit %d\n%s", d.name, x.exit, x.output())
	}
	stopping, okStop := lines.find("for a consistent backup")
	started, okStart := lines.find("started again")
	if !okStop || !okStart || started < stopping {
		return 0, fmt.Errorf("backup of %s: no progress lines \"stopping … for a consistent backup\" and \"… started again\" in\n%s", d.name, x.output())
	}
	if err := b.takeBackupOut(d, res); err != nil {
		return 0, err
	}
	if img, err := b.runningImage(ctx, d.name); err != nil || img != imageRepo+":"+toTag {
		return 0, fmt.Errorf("after the backup, %s runs %q (%v)", d.name, img, err)
	}
	if err := waitHealthy(ctx, healthURL(d), 2*time.Minute); err != nil {
		return 0, err
	}
	res.cli.add(x)
	res.cliBefore = append(res.cliBefore, stopping)
	res.cliDown = append(res.cliDown, started-stopping)
	res.cliAfter = append(res.cliAfter, max(x.wall-started, 0))
	return x.wall, nil
}

// takeBackupOut checks that the deployment's store holds exactly one
// verified backup of the grown database, notes its size and removes it.
func (b *bench) takeBackupOut(d *deployment, res *backupResults) error {
	st, err := backup.Open(filepath.Join(d.dir, "backups"), d.name)
	if err != nil {
		return err
	}
	list, err := st.List()
	if err != nil {
		return err
	}
	if len(list) != 1 {
		return fmt.Errorf("%s: %d backups in the store, want 1", d.name, len(list))
	}
	m := list[0]
	if err := checkBigBackup(m, res); err != nil {
		return err
	}
	return os.RemoveAll(st.Path(m.ID))
}

func checkBigBackup(m backup.Manifest, res *backupResults) error {
	if !m.Verified || m.Revision != res.revision || m.Rows[payloadTable] != res.rows {
		return fmt.Errorf("backup %s: verified %t, revision %q, %d rows in %s; want verified, %q, %d",
			m.ID, m.Verified, m.Revision, m.Rows[payloadTable], payloadTable, res.revision, res.rows)
	}
	for _, f := range m.Files {
		if f.Name == backup.DatabaseName {
			res.backupBytes = f.Size
		}
	}
	return nil
}

// inProcBackup stops the container (timed apart), runs
// executor.TakeBackup with a timed FileReader and the stack sampler,
// starts the container again (timed apart), checks and removes the backup.
func (b *bench) inProcBackup(ctx context.Context, eng *engine.Client, d *deployment, res *backupResults) (time.Duration, error) {
	ct, err := eng.InspectContainer(ctx, d.name)
	if err != nil || ct == nil {
		return 0, fmt.Errorf("inspect %s: %v", d.name, err)
	}
	t0 := time.Now()
	if err := eng.StopContainer(ctx, ct.ID, stopGrace); err != nil {
		return 0, err
	}
	stop := time.Since(t0)
	store, err := backup.Open(filepath.Join(d.dir, "backups"), d.name)
	if err != nil {
		return 0, err
	}
	fr := &timedReader{FileReader: eng}
	smp := startSampler(samplePeriod, "executor.TakeBackup(", classifyBackup)
	t0 = time.Now()
	m, err := executor.TakeBackup(ctx, fr, store, ct.ID, spec.DataDir, backup.Manifest{
		Deployment: d.name, Host: config.DefaultHost, Created: time.Now(), Reason: "bench",
		Version: toVer, Image: imageRepo + ":" + toTag, ImageID: ct.ImageID, Revision: res.revision,
	}, catalog.Default())
	took := time.Since(t0)
	phases := smp.stop()
	if err != nil {
		return 0, err
	}
	t0 = time.Now()
	if err := eng.StartContainer(ctx, ct.ID); err != nil {
		return 0, err
	}
	start := time.Since(t0)
	if err := checkBigBackup(*m, res); err != nil {
		return 0, err
	}
	if err := os.RemoveAll(store.Path(m.ID)); err != nil {
		return 0, err
	}
	if err := waitHealthy(ctx, healthURL(d), 2*time.Minute); err != nil {
		return 0, err
	}
	dbCopy, ok := fr.took(dbPath)
	if !ok {
		return 0, errors.New("TakeBackup did not copy " + dbPath)
	}
	res.inProc = append(res.inProc, took)
	res.inProcStop = append(res.inProcStop, stop)
	res.inProcStart = append(res.inProcStart, start)
	res.inProcCopy = append(res.inProcCopy, dbCopy)
	wal, _ := fr.took(dbPath + "-wal (failed)")
	shm, _ := fr.took(dbPath + "-shm (failed)")
	res.inProcProbes = append(res.inProcProbes, wal+shm)
	res.phases = append(res.phases, phases)
	return took, nil
}

// timedReader times each CopyFile of the FileReader it wraps, by source
// path; failed calls under "<path> (failed)".
type timedReader struct {
	observe.FileReader
	mu    sync.Mutex
	calls map[string]time.Duration
}

func (t *timedReader) CopyFile(ctx context.Context, id, src, dst string) (int64, error) {
	t0 := time.Now()
	n, err := t.FileReader.CopyFile(ctx, id, src, dst)
	took := time.Since(t0)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.calls == nil {
		t.calls = map[string]time.Duration{}
	}
	if err != nil {
		src += " (failed)"
	}
	t.calls[src] += took
	return n, err
}

func (t *timedReader) took(src string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.calls[src]
	return d, ok
}

// backupPhases classify a stack of the goroutine running TakeBackup: the
// first phase whose every pattern occurs in the stack wins. The patterns
// are function names of the product (executor/backup.go, backup/store.go,
// backup/manifest.go, schema/schema.go, engine/copy.go).
// With data, the phase reads or writes the whole database and the report
// gives its rate.
var backupPhases = []struct {
	name     string
	patterns []string
	data     bool
}{
	{"copy `database.db` out (Engine API archive; + `-wal`, `-shm` probes): `observe.CopySQLite`", []string{"observe.CopySQLite"}, true},
	{"copy `token`, `jwt_secret_key` out (Engine API archive): `copySecrets`", []string{"executor.copySecrets"}, false},
	{"`fsync` of the self-contained file again: `selfContained` → `syncPath`", []string{"backup.selfContained", "backup.syncPath"}, true},
	{"fold into one file: SQLite online backup API (its commit syncs the file), `journal_mode=DELETE`: `selfContained`", []string{"backup.selfContained"}, true},
	{"`PRAGMA integrity_check`: `schema.integrity`", []string{"schema.integrity"}, true},
	{"tables, columns, revision, `count(*)` of every table: rest of `schema.Inspect`", []string{"schema.Inspect"}, true},
	{"sha256 of the backup's files: `hashFile`", []string{"backup.hashFile"}, true},
	{"secrets into the backup: `copyPresent`", []string{"backup.copyPresent"}, false},
	{"manifest written and fsynced: `writeFileSync`", []string{"backup.writeFileSync"}, false},
	{"directory fsyncs, rename into place: `Store.write`", []string{"backup.(*Store).write"}, false},
	{"remove the raw copy: deferred `os.RemoveAll`", []string{"os.RemoveAll"}, true},
	{"other: temporary directory, probe check", nil, false},
}

// dataPhases are the names of the phases with data set.
var dataPhases = map[string]bool{}

func init() {
	for _, ph := range backupPhases {
		dataPhases[ph.name] = ph.data
	}
}

func classifyBackup(stack string) string {
	for _, p := range backupPhases {
		all := true
		for _, pat := range p.patterns {
			all = all && strings.Contains(stack, pat)
		}
		if all {
			return p.name
		}
	}
	return "?"
}

// sampler is a wall-clock stack sampler: every period it takes the stacks
// of all goroutines (runtime.Stack), finds the one whose stack holds
// marker, and adds the time since the previous sample to the phase
// classify names for that stack. Unlike a CPU profile it counts time spent
// waiting (I/O, fsync, the engine) as well as running; its resolution is
// the period. A sample without the marker is not counted.
type sampler struct {
	stopc, done chan struct{}
	acc         map[string]time.Duration
}

func startSampler(period time.Duration, marker string, classify func(string) string) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{}), acc: map[string]time.Duration{}}
	go func() {
		defer close(s.done)
		buf := make([]byte, 1<<20)
		tick := time.NewTicker(period)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
			n := runtime.Stack(buf, true)
			for n == len(buf) {
				buf = make([]byte, 2*len(buf))
				n = runtime.Stack(buf, true)
			}
			now := time.Now()
			for _, g := range bytes.Split(buf[:n], []byte("\n\n")) {
				if bytes.Contains(g, []byte(marker)) {
					s.acc[classify(string(g))] += now.Sub(last)
					break
				}
			}
			last = now
		}
	}()
	return s
}

// stop ends sampling and returns the time per phase.
func (s *sampler) stop() map[string]time.Duration {
	close(s.stopc)
	<-s.done
	return s.acc
}

// lineStamps records when each line of a process's output arrived,
// relative to t0.
type lineStamps struct {
	t0    time.Time
	mu    sync.Mutex
	buf   []byte
	lines []stampedLine
}

type stampedLine struct {
	at   time.Duration
	text string
}

func (l *lineStamps) Write(p []byte) (int, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, stampedLine{at: now.Sub(l.t0), text: string(l.buf[:i])})
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// find returns when the first line containing s arrived.
func (l *lineStamps) find(s string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line.text, s) {
			return line.at, true
		}
	}
	return 0, false
}

func healthURL(d *deployment) string { return fmt.Sprintf("http://127.0.0.1:%d/healthz", d.port) }

// waitHealthy polls url every 20 ms until it answers 200.
func waitHealthy(ctx context.Context, url string, timeout time.Duration) error {
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	for {
		if probe(ctx, hc, url) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no 200 from %s within %v", url, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// mibps is bytes per duration in MiB/s.
func mibps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / (1 << 20) / d.Seconds()
}
