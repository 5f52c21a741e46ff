package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
)

// downtimePoll is the client's /healthz polling period.
const downtimePoll = 10 * time.Millisecond

// downtimeProbeTimeout bounds one poll. A refused or reset connection
// fails in well under a millisecond on loopback; a connection that the
// engine's port proxy accepts while the container goes away can hang.
const downtimeProbeTimeout = time.Second

// stableAfter is how many 200s in a row after the operation end a run.
const stableAfter = 20

// seedArgs give the database rows, so that the backup is not empty.
var seedArgs = []string{"gpustack", "emulator", "seed", "--models", "3", "--instances", "6", "--users", "2"}

// Downtime methods.
const (
	dtUnguarded = iota // stop, remove, create, start through the Engine API
	dtGuarded          // gpustack-deploy apply, default backup policy
	numDt
)

var dtKinds = [numDt]string{"unguarded", "guarded"}

// downtimeResults are the downtime figures, one row per start-up setting.
type downtimeResults struct {
	rows []*downtimeRow
}

type downtimeRow struct {
	delay time.Duration // GPUSTACK_EMULATOR_STARTUP_DELAY of the new server; 0: the emulator's own start-up
	down  [numDt][]time.Duration
	// op start → first failed poll
	lead [numDt][]time.Duration
	// operation wall time (process for guarded, in-process for unguarded)
	walls [numDt][]time.Duration
	// outage windows after the operation started (1 expected)
	windows [numDt][]int
	// largest gap between two poll starts inside the outage
	gap [numDt][]time.Duration
	// polls that ran into the timeout
	timeouts [numDt][]int
	// the longest 200 after the operation started
	slowestOK [numDt][]time.Duration
	// 200s that took longer than heldAfter
	held [numDt][]int
	// rows in the guarded runs' backups
	backupRows []int64
}

// downtimeSection measures both methods' downtime with the emulator's
// start-up and, if -startup-delay is set, with that delay on both sides.
func (b *bench) downtimeSection(ctx context.Context) (*downtimeResults, error) {
	eng, err := engine.Dial(ctx, config.DefaultHost, "")
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	res := &downtimeResults{}
	delays := []time.Duration{0}
	if b.o.startupDelay > 0 {
		delays = append(delays, b.o.startupDelay)
	}
	for _, delay := range delays {
		row := &downtimeRow{delay: delay}
		res.rows = append(res.rows, row)
		stage("downtime %s -> %s (%s): %d rounds of %s and %s, alternating, polling /healthz every %v",
			fromTag, toTag, delayName(delay), b.o.downtimeRuns, dtKinds[dtUnguarded], dtKinds[dtGuarded], downtimePoll)
		for i := range b.o.downtimeRuns {
			var line []string
			for k := range numDt {
				m := (i + k) % numDt
				down, err := b.downtimeOnce(ctx, eng, row, m)
				if err != nil {
					return nil, err
				}
				line = append(line, fmt.Sprintf("%s %v", dtKinds[m], down.Round(time.Millisecond)))
			}
			stage("  round %d/%d: down %s", i+1, b.o.downtimeRuns, strings.Join(line, ", "))
		}
	}
	return res, nil
}

func delayName(d time.Duration) string {
	if d == 0 {
		return "emulator's own start-up"
	}
	return "GPUSTACK_EMULATOR_STARTUP_DELAY=" + d.String()
}

// downtimeOnce brings a fresh deployment to v0.4.1 (not timed), seeds
// rows, then upgrades it with method m while a client polls /healthz, and
// returns the downtime that client saw.
func (b *bench) downtimeOnce(ctx context.Context, eng *engine.Client, row *downtimeRow, m int) (time.Duration, error) {
	kind := map[int]string{dtUnguarded: "dtu", dtGuarded: "dtg"}[m]
	d, err := b.newDeploymentWith(kind, fromVer, true, row.delay > 0)
	if err != nil {
		return 0, err
	}
	if err := b.setup(ctx, d); err != nil {
		return 0, err
	}
	x, err := eng.Exec(ctx, d.name, seedArgs)
	if err != nil {
		return 0, err
	}
	if x.ExitCode != 0 {
		return 0, fmt.Errorf("seed %s: exit %d: %s", d.name, x.ExitCode, x.Stderr)
	}
	vars := map[string]string{"version": toVer}
	args := append([]string(nil), upgradeArgs...)
	if row.delay > 0 {
		vars["startup_delay"] = row.delay.String()
		args = append(args, "--var", "startup_delay="+row.delay.String())
	}
	var u *unguarded
	if m == dtUnguarded {
		if u, err = b.unguardedSpec(d, vars); err != nil {
			return 0, err
		}
	}

	p := startPoller(healthURL(d), downtimePoll)
	if err := p.waitOK(ctx, 3, 10*time.Second); err != nil {
		p.stop()
		return 0, fmt.Errorf("%s before the upgrade: %w", d.name, err)
	}
	opStart := time.Now()
	var wall time.Duration
	switch m {
	case dtUnguarded:
		wall, _, err = baselineUpgrade(ctx, u)
		if err != nil {
			p.stop()
			return 0, fmt.Errorf("unguarded upgrade of %s: %w", d.name, err)
		}
	case dtGuarded:
		s, err := b.tool(ctx, d, nil, args...)
		if err != nil {
			p.stop()
			return 0, err
		}
		if s.exit != 0 {
			p.stop()
			return 0, fmt.Errorf("guarded upgrade of %s: apply exited %d\n%s", d.name, s.exit, s.output())
		}
		wall = s.wall
	}
	werr := p.waitOK(ctx, stableAfter, 30*time.Second)
	polls := p.stop()
	if werr != nil {
		return 0, fmt.Errorf("%s after the %s upgrade: %w", d.name, dtKinds[m], werr)
	}
	o, ok := outageOf(polls, opStart)
	if !ok {
		return 0, fmt.Errorf("%s: the client saw no outage during the %s upgrade (%d polls)", d.name, dtKinds[m], len(polls))
	}
	img, err := b.runningImage(ctx, d.name)
	if err != nil {
		return 0, err
	}
	if img != imageRepo+":"+toTag {
		return 0, fmt.Errorf("after the %s upgrade, %s runs %q, want %s:%s", dtKinds[m], d.name, img, imageRepo, toTag)
	}
	if row.delay > 0 {
		if err := b.checkEnv(ctx, d.name, "GPUSTACK_EMULATOR_STARTUP_DELAY="+row.delay.String()); err != nil {
			return 0, err
		}
	}
	if m == dtGuarded {
		rows, err := guardedBackupRows(d)
		if err != nil {
			return 0, err
		}
		row.backupRows = append(row.backupRows, rows)
	}
	row.down[m] = append(row.down[m], o.down)
	row.lead[m] = append(row.lead[m], o.lead)
	row.walls[m] = append(row.walls[m], wall)
	row.windows[m] = append(row.windows[m], o.windows)
	row.gap[m] = append(row.gap[m], o.gap)
	row.timeouts[m] = append(row.timeouts[m], o.timeouts)
	row.slowestOK[m] = append(row.slowestOK[m], o.slowestOK)
	row.held[m] = append(row.held[m], o.held)
	return o.down, b.teardown(ctx, d)
}

// checkEnv makes sure the running container has env set.
func (b *bench) checkEnv(ctx context.Context, name, env string) error {
	j, err := b.cli.ContainerInspect(ctx, name)
	if err != nil {
		return err
	}
	if j.Config != nil {
		for _, e := range j.Config.Env {
			if e == env {
				return nil
			}
		}
	}
	return fmt.Errorf("%s runs without %s", name, env)
}

// guardedBackupRows checks that the guarded upgrade left one verified
// backup holding rows, and returns how many.
func guardedBackupRows(d *deployment) (int64, error) {
	st, err := backup.Open(d.dir+"/backups", d.name)
	if err != nil {
		return 0, err
	}
	list, err := st.List()
	if err != nil {
		return 0, err
	}
	if len(list) != 1 || !list[0].Verified {
		return 0, fmt.Errorf("%s: %d backups after the guarded upgrade, want 1 verified", d.name, len(list))
	}
	n := list[0].TotalRows()
	if list[0].Rows["models"] == 0 {
		return n, fmt.Errorf("%s: backup %s holds no models (%d rows): the seed did not reach it", d.name, list[0].ID, n)
	}
	return n, nil
}

// poller is the client: every period it sends GET /healthz on a new
// connection (no keep-alive), without waiting for the previous poll, so a
// poll that hangs does not delay the next; each is recorded with its send
// time, whether it was a 200 and whether it ran into the timeout.
type poller struct {
	url         string
	hc          *http.Client
	mu          sync.Mutex
	polls       []pollRec
	inflight    sync.WaitGroup
	stopc, done chan struct{}
}

type pollRec struct {
	at      time.Time
	took    time.Duration
	ok      bool
	timeout bool
}

func startPoller(url string, period time.Duration) *poller {
	p := &poller{
		url:   url,
		hc:    &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: downtimeProbeTimeout},
		stopc: make(chan struct{}), done: make(chan struct{}),
	}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			p.inflight.Add(1)
			go func(at time.Time) {
				defer p.inflight.Done()
				ok, timeout := p.probe()
				took := time.Since(at)
				p.mu.Lock()
				p.polls = append(p.polls, pollRec{at, took, ok, timeout})
				p.mu.Unlock()
			}(time.Now())
			select {
			case <-p.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *poller) probe() (ok, timeout bool) {
	resp, err := p.hc.Get(p.url)
	if err != nil {
		var ne net.Error
		return false, errors.As(err, &ne) && ne.Timeout()
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, false
}

// sorted returns the finished polls in the order they were sent.
func (p *poller) sorted() []pollRec {
	p.mu.Lock()
	out := slices.Clone(p.polls)
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b pollRec) int { return a.at.Compare(b.at) })
	return out
}

// waitOK waits until the last n finished polls were 200s.
func (p *poller) waitOK(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		polls := p.sorted()
		k := 0
		for i := len(polls) - 1; i >= 0 && polls[i].ok; i-- {
			k++
		}
		if k >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not %d answers 200 in a row within %v", p.url, n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(downtimePoll):
		}
	}
}

// stop ends polling, waits for the polls in flight and returns them all
// in the order they were sent.
func (p *poller) stop() []pollRec {
	close(p.stopc)
	<-p.done
	p.inflight.Wait()
	return p.sorted()
}

type outage struct {
	down, lead, gap time.Duration
	windows         int
	timeouts        int           // polls after opStart that ran into the timeout
	held            int           // 200s after opStart that took longer than heldAfter
	slowestOK       time.Duration // the longest 200 after opStart
}

// heldAfter is how long a 200 may take before the report calls the
// request held.
const heldAfter = 10 * downtimePoll

// outageOf finds the outage among the polls (in send order) sent after
// opStart. It begins at the send time of the first failed poll and ends
// when the first 200 to a poll sent after that one is received: a request
// sent during the outage that was held and answered later counts as up
// only from its answer. lead is the time from opStart to the first
// failure, gap the largest interval between two poll sends inside the
// outage, windows 1 plus the runs of failures among the polls sent after
// the end, timeouts the polls that ran into the timeout.
func outageOf(polls []pollRec, opStart time.Time) (outage, bool) {
	var o outage
	first := -1
	var end time.Time
	for i, q := range polls {
		if q.at.Before(opStart) {
			continue
		}
		if q.timeout {
			o.timeouts++
		}
		if q.ok {
			o.slowestOK = max(o.slowestOK, q.took)
			if q.took > heldAfter {
				o.held++
			}
		}
		if first < 0 && !q.ok {
			first = i
		}
		if first >= 0 && i > first && q.ok {
			if at := q.at.Add(q.took); end.IsZero() || at.Before(end) {
				end = at
			}
		}
	}
	if first < 0 || end.IsZero() {
		return o, false
	}
	start := polls[first].at
	o.down = end.Sub(start)
	o.lead = start.Sub(opStart)
	o.windows = 1
	prevOK := true
	for i := first + 1; i < len(polls); i++ {
		q := polls[i]
		if !q.at.After(end) {
			o.gap = max(o.gap, q.at.Sub(polls[i-1].at))
			continue
		}
		if !q.ok && prevOK {
			o.windows++
		}
		prevOK = q.ok
	}
	return o, true
}
