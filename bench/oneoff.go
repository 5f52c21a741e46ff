package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"
)

func volMount(vol, target string, ro bool) mount.Mount {
	return mount.Mount{Type: mount.TypeVolume, Source: vol, Target: target, ReadOnly: ro}
}

// oneOffRun is a finished one-off container: its standard output, the
// time from create to removed, and from its start to its exit as the
// engine records them.
type oneOffRun struct {
	stdout    string
	took, ran time.Duration
}

// oneOff runs script with /bin/sh in a one-off container of the
// deployments' image (as root, no network, the given mounts), like the
// tool's helper containers (engine.RunTool), and fails on a non-zero exit.
// It is named and labelled as the run's.
func (b *bench) oneOff(ctx context.Context, script string, args []string, mounts ...mount.Mount) (oneOffRun, error) {
	var r oneOffRun
	name := b.name("oneoff")
	cfg := &container.Config{
		Image: imageRepo + ":" + toTag, Entrypoint: []string{"/bin/sh", "-c", script}, Cmd: append([]string{"sh"}, args...),
		User: "0:0", Labels: map[string]string{labelRun: b.runID},
	}
	host := &container.HostConfig{NetworkMode: "none", Mounts: mounts}
	t0 := time.Now()
	created, err := b.cli.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		return r, fmt.Errorf("create %s: %w", name, err)
	}
	removed := false
	defer func() {
		if !removed {
			_ = b.cli.ContainerRemove(context.WithoutCancel(ctx), created.ID, container.RemoveOptions{Force: true})
		}
	}()
	exited, waitErr := b.cli.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := b.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return r, fmt.Errorf("start %s: %w", name, err)
	}
	var code int64
	select {
	case w := <-exited:
		code = w.StatusCode
	case err := <-waitErr:
		return r, fmt.Errorf("wait for %s: %w", name, err)
	}
	j, err := b.cli.ContainerInspect(ctx, created.ID)
	if err != nil {
		return r, err
	}
	rc, err := b.cli.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return r, err
	}
	var stdout, stderr bytes.Buffer
	_, err = stdcopy.StdCopy(&stdout, &stderr, rc)
	rc.Close()
	if err != nil {
		return r, err
	}
	if err := b.cli.ContainerRemove(ctx, created.ID, container.RemoveOptions{}); err != nil {
		return r, err
	}
	removed = true
	r.took = time.Since(t0)
	if j.State != nil {
		started, err1 := time.Parse(time.RFC3339Nano, j.State.StartedAt)
		finished, err2 := time.Parse(time.RFC3339Nano, j.State.FinishedAt)
		if err1 == nil && err2 == nil {
			r.ran = finished.Sub(started)
		}
	}
	r.stdout = stdout.String()
	if code != 0 {
		return r, fmt.Errorf("%s exited %d: %s", name, code, strings.TrimSpace(stderr.String()))
	}
	return r, nil
}

// treeSize counts the regular files below dir (relative) of volume vol
// and their bytes, summed here: awk's printf %d does not hold 2 GiB in
// every awk.
func (b *bench) treeSize(ctx context.Context, vol, dir string) (int, int64, error) {
	r, err := b.oneOff(ctx, `cd "/v/$1" 2>/dev/null || exit 0; find . -type f -exec stat -c '%s' {} +`, []string{dir}, volMount(vol, "/v", true))
	if err != nil {
		return 0, 0, fmt.Errorf("list %s/%s: %w", vol, dir, err)
	}
	var files int
	var n int64
	for _, f := range strings.Fields(r.stdout) {
		x, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("list %s/%s: %q", vol, dir, f)
		}
		files++
		n += x
	}
	return files, n, nil
}

// engineEvents records the container events of one deployment (its own
// containers and the tool's one-off containers) while an operation runs.
type engineEvents struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	msgs   []events.Message
	err    error
}

func (b *bench) watchEvents(ctx context.Context, deployment string) *engineEvents {
	ctx, cancel := context.WithCancel(ctx)
	e := &engineEvents{cancel: cancel, done: make(chan struct{})}
	msgs, errs := b.cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("label", labelDeployment+"="+deployment),
	)})
	go func() {
		defer close(e.done)
		for {
			select {
			case m := <-msgs:
				e.mu.Lock()
				e.msgs = append(e.msgs, m)
				e.mu.Unlock()
			case err := <-errs:
				if err != nil && !errors.Is(err, context.Canceled) {
					e.mu.Lock()
					e.err = err
					e.mu.Unlock()
				}
				return
			}
		}
	}()
	return e
}

// stop waits a moment for the last events to arrive, ends the stream and
// returns what it saw.
func (e *engineEvents) stop() ([]events.Message, error) {
	time.Sleep(200 * time.Millisecond)
	e.cancel()
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.msgs), e.err
}

// helperRun is one of the tool's one-off containers, from its events.
type helperRun struct {
	id                string
	created, removed  time.Duration // since the process start
	haveC, haveRemove bool
}

// helpers returns the tool's one-off containers in the order they were
// created, with times relative to t0.
func helpers(msgs []events.Message, t0 time.Time) []helperRun {
	byID := map[string]*helperRun{}
	var order []string
	for _, m := range msgs {
		if !strings.HasPrefix(m.Actor.Attributes["name"], "gpustack-deploy-tool-") {
			continue
		}
		h, ok := byID[m.Actor.ID]
		if !ok {
			h = &helperRun{id: m.Actor.ID}
			byID[m.Actor.ID] = h
			order = append(order, m.Actor.ID)
		}
		at := time.Unix(0, m.TimeNano).Sub(t0)
		switch m.Action {
		case events.ActionCreate:
			h.created, h.haveC = at, true
		case events.ActionDestroy:
			h.removed, h.haveRemove = at, true
		}
	}
	var out []helperRun
	for _, id := range order {
		out = append(out, *byID[id])
	}
	slices.SortStableFunc(out, func(a, b helperRun) int { return int(a.created - b.created) })
	return out
}

// copiedLine matches the tool's line after the copy and its check.
var copiedLine = regexp.MustCompile(`copied (\d+) model files to \S+ in (\S+) and checked them`)

// plannedLine matches what the plan says the tree holds.
var plannedLine = regexp.MustCompile(`copy model cache from \S+ into \S+ \(([^)]*)\)`)
