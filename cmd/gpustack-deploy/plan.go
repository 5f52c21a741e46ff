package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/plan"
	"github.com/gpustack-deploy/gpustack-deploy/planner"
	"github.com/gpustack-deploy/gpustack-deploy/render"
)

func runPlan(ctx context.Context, s stdio, args []string) int {
	var (
		c        common
		r        replaceFlags
		tf       targetFlag
		asJSON   bool
		out      string
		detailed bool
	)
	fs := newFlagSet("plan", "Compare the files with what runs on the Docker engine and show what apply would do.",
		"gpustack-deploy plan -f gpustack.hcl --out upgrade.plan", s)
	c.register(fs)
	r.register(fs, false)
	tf.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print the plan as JSON")
	fs.StringVar(&out, "out", "", "save the plan to `FILE`; apply FILE runs exactly it, or refuses if anything changed")
	fs.BoolVar(&detailed, "detailed-exitcode", false, "exit 0 with no changes, 2 with changes, 1 on error or refusal")
	if code, done := parse(fs, args, s); done {
		return code
	}
	l, ok := c.load(s)
	if !ok {
		return exitError
	}
	if err := tf.apply(l); err != nil {
		return errorf(s, "%v", err)
	}
	replaced, err := r.deployments(l.desired)
	if err != nil {
		return errorf(s, "%v", err)
	}
	// Every host is dialled at once; the hosts that answer are planned and
	// shown even when another does not, and plan then fails naming it.
	engines, closeAll, failed := c.connectAll(ctx, l.desired)
	defer closeAll()
	reachable := l.onHosts(engines)
	p, err := makePlan(ctx, &c, engines, reachable, replaced)
	if err != nil {
		return errorf(s, "%v", err)
	}
	if len(failed) > 0 {
		p.Unreachable = failed.names()
		if asJSON {
			_ = render.JSON(s.out, p)
		} else {
			render.Plan(s.out, p)
		}
		for _, h := range failed.names() {
			var names []string
			for _, d := range l.desired.Deployments {
				if d.Host == h {
					names = append(names, d.Name)
				}
			}
			errorf(s, "host %s is unreachable, so %s could not be planned: %v", h, strings.Join(names, ", "), failed[h])
		}
		if out != "" {
			errorf(s, "the plan was not saved to %s: it lacks the unreachable hosts", out)
		}
		return exitError
	}
	if asJSON {
		if err := render.JSON(s.out, p); err != nil {
			return errorf(s, "%v", err)
		}
	} else {
		render.Plan(s.out, p)
	}
	if p.Refused() {
		return exitError
	}
	if out != "" {
		if err := saveplan(out, p, l, r.replace, tf.names); err != nil {
			return errorf(s, "%v", err)
		}
		if !asJSON {
			fmt.Fprintf(s.out, "\nSaved the plan to %s. Apply exactly it with: gpustack-deploy apply %s\n", out, out)
		}
	}
	if detailed && p.HasChanges() {
		return exitChanges
	}
	return exitOK
}

// makePlan observes the hosts and computes the plan; replaced names the
// deployments whose data volume is replaced (their volumes are measured).
func makePlan(ctx context.Context, c *common, engines observe.Engines, l *loaded, replaced []string) (*plan.Plan, error) {
	obs, err := c.observe(ctx, engines, l.desired.Deployments, observe.WithUsage(replaced...))
	if err != nil {
		return nil, err
	}
	return planner.Plan(l.desired, obs, l.catalog, planner.ReplaceData(replaced...))
}

// savedPlan is the file `plan --out` writes. It holds no secret: the plan
// names variables and environment keys, never their values, and apply
// reads secrets again from --var and the environment.
type savedPlan struct {
	FormatVersion int        `json:"format_version"`
	Created       time.Time  `json:"created"`
	Files         []fileHash `json:"files"`
	// Replace holds the --replace values the plan was made with.
	Replace []string `json:"replace,omitempty"`
	// Targets holds the --target values the plan was made with.
	Targets []string   `json:"targets,omitempty"`
	Plan    *plan.Plan `json:"plan"`
}

type fileHash struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

func configHashes(l *loaded) []fileHash {
	var out []fileHash
	for name, f := range l.parser.Files() {
		sum := sha256.Sum256(f.Bytes)
		abs, err := filepath.Abs(name)
		if err != nil {
			abs = name
		}
		out = append(out, fileHash{Path: abs, SHA256: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func saveplan(path string, p *plan.Plan, l *loaded, replace, targets []string) error {
	data, err := json.MarshalIndent(savedPlan{FormatVersion: plan.FormatVersion, Created: time.Now().UTC(), Files: configHashes(l), Replace: replace, Targets: targets, Plan: p}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("save plan: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save plan: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	return nil
}

func loadSavedPlan(path string) (*savedPlan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read saved plan: %w", err)
	}
	return decodeSavedPlan(path, data)
}

// decodeSavedPlan decodes the content of the saved plan file path. Every
// enum of the plan must carry a name this binary knows: an action whose
// kind is missing decodes to no kind at all, and is refused here rather
// than carried as a zero value.
func decodeSavedPlan(path string, data []byte) (*savedPlan, error) {
	var sp savedPlan
	if err := json.Unmarshal(data, &sp); err != nil {
		return nil, fmt.Errorf("%s is not a saved plan: %w", path, err)
	}
	if sp.FormatVersion != plan.FormatVersion || sp.Plan == nil {
		return nil, fmt.Errorf("%s: saved plan format %d, this gpustack-deploy reads %d; run plan again", path, sp.FormatVersion, plan.FormatVersion)
	}
	if _, err := json.Marshal(sp.Plan); err != nil {
		return nil, fmt.Errorf("%s is not a saved plan: %w", path, err)
	}
	return &sp, nil
}
