package executor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/engine"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

// ConfirmDelete asks the operator to confirm deleting a volume by its name;
// detail says what it holds. It must return false unless the operator
// named that very volume.
type ConfirmDelete func(volume, detail string) bool

// removeContainer stops and removes a container of the deployment; its
// volumes stay.
func (r *run) removeContainer(ctx context.Context, name string) error {
	ct, err := r.eng.InspectContainer(ctx, name)
	if err != nil || ct == nil {
		return err
	}
	if !r.ours(ct) {
		return fmt.Errorf("container %s is not ours; left in place", name)
	}
	if err := r.eng.StopContainer(ctx, ct.ID, r.x.grace()); err != nil {
		return err
	}
	if ct.ID == r.stoppedID {
		r.stoppedID = ""
	}
	return r.eng.RemoveContainer(ctx, ct.ID)
}

// confirmDeletions asks, before anything is done, for every volume the plan
// deletes, and checks that no other container uses it: a refusal then
// leaves the deployment exactly as it was.
func (r *run) confirmDeletions(ctx context.Context) error {
	for _, a := range r.pd.Actions {
		if a.Kind != plan.ActionDeleteVolume {
			continue
		}
		users, err := r.eng.ListByVolume(ctx, a.Subject)
		if err != nil {
			return err
		}
		for _, ct := range users {
			if !r.ours(ct) && ct.Labels[spec.LabelRole] != spec.RoleHelper {
				return fmt.Errorf("volume %s is also used by container %s, which is not this deployment's; nothing was changed", a.Subject, ct.Name)
			}
		}
		if r.x.ConfirmDelete == nil || !r.x.ConfirmDelete(a.Subject, a.Detail) {
			return fmt.Errorf("deleting volume %s was not confirmed; nothing was changed (pass --yes-delete-volume=%s or type its name when asked)", a.Subject, a.Subject)
		}
	}
	return nil
}

// deleteVolume deletes a named volume; confirmDeletions has had it
// confirmed by name before the apply began.
func (r *run) deleteVolume(ctx context.Context, a plan.Action) error {
	if err := r.eng.RemoveVolume(ctx, a.Subject); err != nil {
		return err
	}
	r.volumeReplaced = true
	r.x.printf("%s: volume %s deleted", r.d.Name, a.Subject)
	return nil
}

// listScript prints "<sha256|size>  <path>" for every regular file below $1,
// sorted by path; $2 selects sha256 or size.
const listScript = `cd "$1" || exit 3
if [ "$2" = sha256 ]; then find . -type f -exec sha256sum {} + ; else find . -type f -exec stat -c '%s  %n' {} + ; fi | sort -k2`

// copyCache stops the container, copies the model cache out of the data
// volume into the cache volume, and checks that every file arrived intact.
func (r *run) copyCache(ctx context.Context, a plan.Action) error {
	image, err := r.toolImage(ctx)
	if err != nil {
		return err
	}
	if ct, err := r.eng.InspectContainer(ctx, r.d.ContainerName); err != nil {
		return err
	} else if ct != nil && ct.Running() {
		r.x.printf("%s: stopping %s to copy the model cache", r.d.Name, ct.Name)
		if err := r.eng.StopContainer(ctx, ct.ID, r.x.grace()); err != nil {
			return err
		}
		r.stoppedID = ct.ID
	}
	mounts := []engine.HelperMount{
		{Volume: r.d.Data.Name, HostPath: r.d.Data.HostPath, Target: "/src", ReadOnly: true},
		{Volume: r.d.Cache.Name, HostPath: r.d.Cache.HostPath, Target: "/dst"},
	}
	start := time.Now()
	if _, err := r.tool(ctx, image, `cp -a /src/`+observe.CacheInData+`/. /dst/`, nil, mounts); err != nil {
		return fmt.Errorf("copy the model cache: %w", err)
	}
	copied := time.Since(start)
	// Both sides are hashed at once: GPUStack is down until they compare.
	src, dst, err := r.listBoth(ctx, image, "sha256", mounts)
	if err != nil {
		return err
	}
	n, err := sameFiles(src, dst)
	if err != nil {
		return fmt.Errorf("the copy of the model cache in %s is not complete: %w; the data volume still holds every file", r.d.Cache.Source(), err)
	}
	r.x.printf("%s: copied %d model files to %s in %s and checked them (sha256)", r.d.Name, n, r.d.Cache.Source(), copied.Round(time.Millisecond))
	return nil
}

// removeOldCache deletes the model files left in the data volume, after
// checking once more that the cache volume holds each of them (path and
// size).
func (r *run) removeOldCache(ctx context.Context) error {
	image, err := r.toolImage(ctx)
	if err != nil {
		return err
	}
	mounts := []engine.HelperMount{
		{Volume: r.d.Data.Name, HostPath: r.d.Data.HostPath, Target: "/src"},
		{Volume: r.d.Cache.Name, HostPath: r.d.Cache.HostPath, Target: "/dst", ReadOnly: true},
	}
	src, dst, err := r.listBoth(ctx, image, "size", mounts)
	if err != nil {
		return err
	}
	if _, err := sameFiles(src, dst); err != nil {
		return fmt.Errorf("the old copy of the model cache was kept: %w", err)
	}
	if _, err := r.tool(ctx, image, `cd "$1" && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} +`, []string{"/src/" + observe.CacheInData}, mounts); err != nil {
		return err
	}
	r.x.printf("%s: removed the old copy of the model cache from volume %s", r.d.Name, r.d.Data.Source())
	return nil
}

// listBoth lists the old cache (/src/cache) and the new one (/dst) with
// listScript, concurrently, by sha256 or by size.
func (r *run) listBoth(ctx context.Context, image, by string, mounts []engine.HelperMount) ([]byte, []byte, error) {
	type listing struct {
		out []byte
		err error
	}
	srcc := make(chan listing, 1)
	go func() {
		res, err := r.tool(ctx, image, listScript, []string{"/src/" + observe.CacheInData, by}, mounts)
		srcc <- listing{res.Stdout, err}
	}()
	dst, dstErr := r.tool(ctx, image, listScript, []string{"/dst", by}, mounts)
	src := <-srcc
	if src.err != nil {
		return nil, nil, src.err
	}
	if dstErr != nil {
		return nil, nil, dstErr
	}
	return src.out, dst.Stdout, nil
}

// tool runs a script and fails on a non-zero exit.
func (r *run) tool(ctx context.Context, image, script string, args []string, mounts []engine.HelperMount) (engine.ToolResult, error) {
	res, err := r.eng.RunTool(ctx, engine.Tool{Image: image, Deployment: r.d.Name, Script: script, Args: args, Mounts: mounts})
	if err != nil {
		return res, err
	}
	if res.ExitCode != 0 {
		return res, fmt.Errorf("script in %s exited %d: %s", image, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return res, nil
}

// toolImage is a local image of the deployment to run scripts with.
func (r *run) toolImage(ctx context.Context) (string, error) {
	for _, name := range []string{r.d.ContainerName, r.d.ContainerName + observe.PreviousSuffix} {
		ct, err := r.eng.InspectContainer(ctx, name)
		if err != nil {
			return "", err
		}
		if ct != nil {
			return ct.ImageID, nil
		}
	}
	img, err := r.eng.InspectImage(ctx, r.d.ImageRef())
	if err != nil {
		return "", err
	}
	if img == nil {
		return "", fmt.Errorf("no local image of %s to work on its volumes with", r.d.Name)
	}
	return img.ID, nil
}

// sameFiles checks that every "<digest>  <path>" line of src appears in dst
// and returns how many there were. dst may hold more.
func sameFiles(src, dst []byte) (int, error) {
	have := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(dst))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if ok {
			have[path] = sum
		}
	}
	n := 0
	sc = bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			continue
		}
		got, found := have[path]
		switch {
		case !found:
			return n, fmt.Errorf("%s is missing", path)
		case got != sum:
			return n, fmt.Errorf("%s differs (%s, want %s)", path, got, sum)
		}
		n++
	}
	return n, sc.Err()
}
