package observe

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
)

// Usage is how much a directory holds.
type Usage struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
}

// String is "1234 files, 5.6 GiB".
func (u *Usage) String() string {
	if u == nil {
		return "size unknown"
	}
	return fmt.Sprintf("%d files, %s", u.Files, HumanBytes(u.Bytes))
}

// HumanBytes formats a size in binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// usageScript prints "<files> <bytes>" for the regular files below $1, or
// "0 0" when $1 does not exist. It needs only POSIX sh, find, stat and awk,
// which GPUStack's images have. The sum is printed with %.0f: awk's %d
// wraps at 2 GiB in busybox and mawk.
const usageScript = `cd "$1" 2>/dev/null || { echo "0 0"; exit 0; }
find . -type f -exec stat -c %s {} + | awk '{n++; s+=$1} END {printf "%d %.0f\n", n, s}'`

// ToolImages returns the local images of the deployment that may run
// shell scripts, best first: the desired image, then the running
// container's.
func ToolImages(od *Deployment) []string {
	var out []string
	if od.Image != nil {
		out = append(out, od.Image.ID)
	}
	if od.Container != nil && od.Container.ImageID != "" && (od.Image == nil || od.Image.ID != od.Container.ImageID) {
		out = append(out, od.Container.ImageID)
	}
	return out
}

// Measure counts the files and bytes below dir (relative, "" for the
// whole volume) inside volume v, with a one-off container of the first of
// images that can run the script, mounting v read-only.
func Measure(ctx context.Context, eng *engine.Client, images []string, deployment string, v config.Volume, dir string) (*Usage, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("no local image of the deployment to look into volume %s with", v.Source())
	}
	var errs []error
	for _, image := range images {
		res, err := eng.RunTool(ctx, engine.Tool{
			Image: image, Deployment: deployment, Script: usageScript, Args: []string{path.Join("/v", dir)},
			Mounts: []engine.HelperMount{{Volume: v.Name, HostPath: v.HostPath, Target: "/v", ReadOnly: true}},
		})
		switch {
		case err != nil:
			errs = append(errs, err)
		case res.ExitCode != 0:
			errs = append(errs, fmt.Errorf("count files in %s: exit %d: %s", v.Source(), res.ExitCode, strings.TrimSpace(string(res.Stderr))))
		default:
			return parseUsage(string(res.Stdout))
		}
	}
	return nil, errors.Join(errs...)
}

func parseUsage(out string) (*Usage, error) {
	fields := strings.Fields(out)
	if len(fields) != 2 {
		return nil, fmt.Errorf("count files: unexpected output %q", out)
	}
	files, err1 := strconv.ParseInt(fields[0], 10, 64)
	bytes, err2 := strconv.ParseInt(fields[1], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("count files: unexpected output %q", out)
	}
	return &Usage{Files: files, Bytes: bytes}, nil
}

// measureVolumes fills InlineCache when a split may be due, and the data
// and cache usage when asked.
func measureVolumes(ctx context.Context, eng *engine.Client, d config.Deployment, od *Deployment, o options) error {
	image := ToolImages(od)
	if o.usage[d.Name] {
		if od.Data != nil {
			u, err := Measure(ctx, eng, image, d.Name, d.Data, "")
			if err != nil {
				return err
			}
			od.DataUsage = u
		}
		if d.Cache != nil && od.Cache != nil {
			u, err := Measure(ctx, eng, image, d.Name, *d.Cache, "")
			if err != nil {
				return err
			}
			od.CacheUsage = u
		}
	}
	if d.Cache == nil || od.Data == nil || MountsAt(od.Container, d.Cache.Path) {
		return nil
	}
	if od.Container == nil && od.Database.Status != DBRead {
		return nil
	}
	u, err := Measure(ctx, eng, image, d.Name, d.Data, CacheInData)
	if err != nil {
		return fmt.Errorf("look for model files in the data volume: %w", err)
	}
	if u.Files > 0 {
		od.InlineCache = u
	}
	return nil
}

// CacheInData is the cache directory GPUStack uses inside its data
// directory when no --cache-dir is given.
const CacheInData = "cache"

// MountsAt reports whether the container mounts something at target.
func MountsAt(ct *Container, target string) bool {
	if ct == nil {
		return false
	}
	for _, m := range ct.Mounts {
		if m.Destination == target {
			return true
		}
	}
	return false
}
