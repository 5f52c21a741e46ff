// Package executor carries out a plan on the Docker hosts, action by
// action, and proves the result: it waits for GPUStack to answer, watches
// its log for migration failures (whose exit code cannot be trusted before
// v2.1.1), checks /version, the stamped revision and the schema probe, and
// goes back to the previous container and the pre-upgrade backup when the
// new version fails. Every apply holds a per-deployment lock and writes a
// journal, so an interrupted apply is detected and a re-run converges.
//
// The executor does not decide what to do: that is the plan's job. It only
// refuses to run a plan that carries refusals.
package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// Engine is what the executor needs from one Docker host.
type Engine interface {
	InspectContainer(ctx context.Context, ref string) (*engine.Container, error)
	InspectImage(ctx context.Context, ref string) (*engine.Image, error)
	PullImage(ctx context.Context, ref string, w io.Writer, tty bool) error
	CreateVolume(ctx context.Context, name string, labels map[string]string) error
	CreateContainer(ctx context.Context, s spec.Container) (string, error)
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	RemoveContainer(ctx context.Context, id string) error
	RenameContainer(ctx context.Context, id, name string) error
	RemoveVolume(ctx context.Context, name string) error
	ListByVolume(ctx context.Context, source string) ([]*engine.Container, error)
	RunTool(ctx context.Context, t engine.Tool) (engine.ToolResult, error)
	SetRestartPolicy(ctx context.Context, id, policy string) error
	FollowLogs(ctx context.Context, id string, since time.Time) (<-chan string, error)
	WaitExit(ctx context.Context, id string) (<-chan int64, <-chan error)
	Logs(ctx context.Context, id string, tail string) ([]byte, error)
	Stat(ctx context.Context, id, path string) (bool, int64, error)
	CopyFile(ctx context.Context, id, src, dst string) (int64, error)
	CopyIn(ctx context.Context, id, dir string, r io.Reader) error
	ReadSmallFile(ctx context.Context, id, p string, limit int64) ([]byte, error)
}

var _ Engine = (*engine.Client)(nil)

// Clock tells the time; tests inject a fixed one.
type Clock func() time.Time

// Executor applies plans.
type Executor struct {
	Engines map[string]Engine
	Catalog *catalog.Catalog
	// StateDir holds locks and journals (.gpustack-deploy next to the config).
	StateDir string
	// Out receives progress lines; TTY selects interactive pull progress.
	Out io.Writer
	TTY bool
	Now Clock
	// StopGrace is how long a stopping GPUStack gets before SIGKILL.
	StopGrace time.Duration
	// PollInterval is the /healthz polling period.
	PollInterval time.Duration
	// ConfirmDelete gates every volume deletion; nil refuses them all.
	ConfirmDelete ConfirmDelete
	// Adopted maps deployments to the container IDs `import` adopted,
	// which carry no labels but are ours.
	Adopted map[string]string
	// ClusterAPI makes the client of a server's API at url; nil means
	// HTTP with the server's api_key (NewClusterAPI). Tests inject fakes.
	ClusterAPI func(server config.Deployment, url string) ClusterAPI
	// Config is the whole configuration, when the plan covers only part
	// of it (--target, restore): the workers of a server that is stopped
	// are put in maintenance mode even when they are not in the plan.
	Config *config.Desired

	outMu sync.Mutex
}

// ErrRefused is returned when asked to apply a plan that carries refusals.
var ErrRefused = errors.New("the plan has refusals; nothing was applied")

// Result is what happened to one deployment.
type Result struct {
	Deployment string
	// Backup is the id of the backup taken before the change, if any.
	Backup string
	// SafetyCopy is the id of the unverified copy a restore kept of the
	// database it overwrote.
	SafetyCopy string
	// Verified is true when the new container passed every check.
	Verified bool
	// Failure describes why the new version was not accepted.
	Failure *Failure
	// RolledBack is true when the previous container and database are back.
	RolledBack bool
	// Unrestored is true when the apply had changed the deployment and
	// going back failed or was not possible: it is left for the operator.
	Unrestored bool
	// Notes are what the operator should read afterwards.
	Notes []string
	// Worker is set for a worker's result.
	Worker bool
	// Took is how long the deployment's actions ran.
	Took time.Duration
}

// Apply runs every deployment's actions. It stops at the first deployment
// that fails and returns the results so far with the error.
func (x *Executor) Apply(ctx context.Context, p *plan.Plan, desired *config.Desired) ([]Result, error) {
	if p.Refused() {
		return nil, ErrRefused
	}
	byName := map[string]config.Deployment{}
	for _, d := range desired.Deployments {
		byName[d.Name] = d
	}
	var results []Result
	clusters := map[string]*clusterRun{}
	for i := 0; i < len(p.Deployments); {
		pd := p.Deployments[i]
		d, ok := byName[pd.Name]
		if !ok {
			return results, fmt.Errorf("deployment %s is in the plan but not in the configuration", pd.Name)
		}
		if pd.IsWorker() {
			end := p.WaveEnd(i)
			pds := p.Deployments[i:end]
			i = end
			if !pds[0].HasChanges() {
				continue
			}
			ws := make([]config.Deployment, len(pds))
			for k, w := range pds {
				if ws[k], ok = byName[w.Name]; !ok {
					return results, fmt.Errorf("deployment %s is in the plan but not in the configuration", w.Name)
				}
			}
			c := clusters[d.Server]
			if c == nil {
				server, ok := byName[d.Server]
				if !ok {
					return results, fmt.Errorf("worker %s: its server %s is not in the configuration", d.Name, d.Server)
				}
				var err error
				if c, err = x.cluster(ctx, server, d.ServerURL); err != nil {
					return results, fmt.Errorf("workers of %s: %w", d.Server, err)
				}
				clusters[d.Server] = c
			}
			res, err := x.applyWave(ctx, c, ws, pds)
			results = append(results, res...)
			if err != nil {
				return results, err
			}
			continue
		}
		i++
		if !pd.HasChanges() {
			continue
		}
		eng, ok := x.Engines[pd.Host]
		if !ok {
			return results, fmt.Errorf("no connection to docker host %q", pd.Host)
		}
		var pause *serverPause
		if !d.IsWorker() && stopsServer(pd) {
			pause = x.pauseWorkers(ctx, d, desired)
		}
		res, err := x.applyDeployment(ctx, eng, d, pd)
		x.resume(ctx, pause, d.Name, &res)
		results = append(results, res)
		if err != nil {
			return results, fmt.Errorf("apply %s: %w", pd.Name, err)
		}
	}
	x.SettleMaintenance(ctx, p, desired)
	return results, nil
}

func (x *Executor) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now()
}

func (x *Executor) printf(format string, args ...any) {
	if x.Out != nil {
		// The workers of a wave report at once: one line at a time.
		x.outMu.Lock()
		defer x.outMu.Unlock()
		fmt.Fprintf(x.Out, format+"\n", args...)
	}
}

func (x *Executor) grace() time.Duration {
	if x.StopGrace > 0 {
		return x.StopGrace
	}
	return 30 * time.Second
}

// lockedOut writes to x.Out under the lock printf takes, so that the
// progress of workers pulled at once does not interleave mid-write.
type lockedOut struct{ x *Executor }

func (w lockedOut) Write(b []byte) (int, error) {
	if w.x.Out == nil {
		return len(b), nil
	}
	w.x.outMu.Lock()
	defer w.x.outMu.Unlock()
	return w.x.Out.Write(b)
}
