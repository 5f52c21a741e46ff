// Command bench measures gpustack-deploy against the local Docker engine and
// writes comparable figures to docs/benchmarks.md:
//
//	go run ./bench [-runs N] [-out docs/benchmarks.md]
//
// It builds the gpustack-deploy binary once and the GPUStack emulator images
// it needs (gpustack/gpustack:v0.4.1-cpu and v0.5.1-cpu, see
// emulator/image), then measures, as separate processes:
//
//   - a no-op plan of one running deployment, with the engine as found and
//     again with 200 unrelated containers (created, never started) and 200
//     unrelated volumes on it;
//   - an upgrade v0.4.1-cpu → v0.5.1-cpu with backup { before_upgrade =
//     false }, against an unguarded stop / remove / create / start through
//     the Engine API that waits for /healthz only, and the guarded upgrade
//     with the default backup policy, alternating the three methods, each on
//     a fresh deployment brought to v0.4.1 first (not timed);
//   - backup throughput of a database grown to 1 GiB: `gpustack-deploy
//     backup` against a raw copy of the same file out of the same volume,
//     and executor.TakeBackup in process with a wall-clock stack sampler
//     that says where its time goes (bigbackup.go);
//   - downtime as a client sees it, polling /healthz every 10 ms, of the
//     guarded upgrade against the unguarded replacement, with the
//     emulator's own start-up and with a start-up delay (downtime.go);
//   - the cache split: `gpustack-deploy apply` moving a 2 GiB model cache
//     out of the data volume into a cache volume of its own, against a raw
//     `cp -a` of the same tree in one one-off container, with the downtime
//     a client sees and the split's phases (split.go).
//
// -only selects sections (plan, upgrade, backup, downtime, split,
// gobench), so that one can be rerun alone; a partial run prints its
// tables and writes docs/benchmarks.md only when -out is given explicitly.
// With -update, a partial run of the sections that support it (split)
// replaces their part of the existing report and keeps the rest (merge.go).
//
// The binary is started by bench/launch, a small process, so that its
// ru_maxrss is its own and not the bench's (Linux carries the parent's RSS
// high-water mark across fork and exec). Extra, untimed runs go through a
// tracing proxy of the Engine API socket, so the report can say which calls
// the time goes to. Every
// container and volume it creates carries its run's name prefix and label and
// is removed at the end, also after a failure or an interrupt. Images are
// kept: they are a cache shared with the demo and the end-to-end tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 15, "timed runs of each no-op plan measurement (at least 15 for the report's targets)")
	flag.IntVar(&o.upgradeRuns, "upgrade-runs", 0, "timed upgrades per method (default: -runs)")
	flag.IntVar(&o.warmup, "warmup", 2, "untimed runs before each no-op plan measurement")
	flag.IntVar(&o.unrelated, "unrelated", 200, "unrelated containers and volumes for the loaded no-op plan")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "write the report here (relative to the module root); empty: stdout only")
	flag.BoolVar(&o.goBench, "gobench", true, "also run the Go benchmarks of bench/plan_bench_test.go and include them")
	flag.BoolVar(&o.profile, "profile", false, "always CPU-profile the in-process no-op plan (it is profiled anyway when a target is missed)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binary, files, traces) for inspection")
	only := flag.String("only", "", "run only these sections, comma-separated: "+strings.Join(allSections, ", ")+" (default: all)")
	flag.IntVar(&o.backupRuns, "backup-runs", 5, "timed runs of each backup-throughput method")
	flag.IntVar(&o.backupMiB, "backup-mib", 1024, "size the database is grown to for the backup throughput, MiB")
	flag.IntVar(&o.backupBlob, "backup-blob", 1024, "bytes of random data per row of the bench_payload table")
	flag.IntVar(&o.downtimeRuns, "downtime-runs", 10, "timed upgrades per method and start-up for the downtime")
	flag.DurationVar(&o.startupDelay, "startup-delay", 3*time.Second, "GPUSTACK_EMULATOR_STARTUP_DELAY of the downtime's second row (0: one row only)")
	flag.IntVar(&o.splitRuns, "split-runs", 5, "timed runs of each cache-split method")
	flag.IntVar(&o.splitMiB, "split-mib", 2048, fmt.Sprintf("size of the model cache the split moves, MiB (%d files of a %d-th each, and a few small ones)", splitFiles, splitFiles))
	flag.IntVar(&o.v2Runs, "v2-runs", 3, "timed backup+restore rounds per method of the v2backup section")
	flag.IntVar(&o.v2MiB, "v2-mib", 300, "size the v2 database is grown to for the v2backup section, MiB")
	flag.BoolVar(&o.update, "update", false, "with -only: merge the sections run into the existing -out file, replacing their earlier figures and keeping the rest (sections: "+strings.Join(mergeable, ", ")+")")
	flag.Parse()
	if o.upgradeRuns <= 0 {
		o.upgradeRuns = o.runs
	}
	if o.runs < 1 || o.warmup < 0 || o.unrelated < 0 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1, -warmup and -unrelated not negative")
		os.Exit(2)
	}
	if o.backupRuns < 1 || o.backupMiB < 1 || o.backupBlob < 1 || o.downtimeRuns < 1 || o.startupDelay < 0 {
		fmt.Fprintln(os.Stderr, "bench: -backup-runs, -backup-mib, -backup-blob and -downtime-runs must be at least 1, -startup-delay not negative")
		os.Exit(2)
	}
	if o.v2Runs < 1 || o.v2MiB < 1 {
		fmt.Fprintln(os.Stderr, "bench: -v2-runs and -v2-mib must be at least 1")
		os.Exit(2)
	}
	if o.splitRuns < 1 || o.splitMiB < splitFiles || o.splitMiB%splitFiles != 0 {
		fmt.Fprintf(os.Stderr, "bench: -split-runs must be at least 1, -split-mib a multiple of %d\n", splitFiles)
		os.Exit(2)
	}
	var err error
	if o.sections, err = parseSections(*only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if !o.goBench {
		delete(o.sections, "gobench")
	}
	outSet := false
	flag.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if o.update {
		if err := checkUpdate(*only, o.sections, o.out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
	} else if *only != "" && !outSet {
		// A partial report must not replace the full one by accident.
		o.out = ""
		fmt.Fprintln(os.Stderr, "bench: note: -only without -out: tables go to stdout only, docs/benchmarks.md is left as it is")
	}
	o.args = os.Args[1:]
	if o.runs < 15 {
		fmt.Fprintf(os.Stderr, "bench: note: -runs %d is below the 15 runs the targets are stated for\n", o.runs)
	}

	// The first SIGINT/SIGTERM cancels the measurements; the resources are
	// removed before exiting. Signals stay caught during the cleanup so
	// that a second Ctrl-C does not leave containers behind.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		for s := range sigs {
			fmt.Fprintf(os.Stderr, "\nbench: %v: stopping; removing what this run created …\n", s)
			cancel(fmt.Errorf("interrupted by %v", s))
		}
	}()

	code := 0
	b, err := newBench(ctx, o)
	if err == nil {
		err = b.run(ctx)
	}
	if b != nil {
		if cerr := b.cleanup(); cerr != nil {
			fmt.Fprintln(os.Stderr, "bench: cleanup:", cerr)
			code = 1
		}
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && errors.Is(err, context.Canceled) {
			err = cause
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		code = 1
	}
	os.Exit(code)
}

type options struct {
	runs, upgradeRuns, warmup, unrelated int
	out                                  string
	goBench, profile, keep               bool
	// sections to run (see allSections)
	sections map[string]bool
	// backup throughput
	backupRuns, backupMiB, backupBlob int
	// downtime
	downtimeRuns int
	startupDelay time.Duration
	// cache split
	splitRuns, splitMiB int
	// v2 database backup and restore
	v2Runs, v2MiB int
	// merge into the existing report instead of writing it anew
	update bool
	// the command line, for the report
	args []string
}

// allSections are the parts of a run, in the order they run.
var allSections = []string{"plan", "upgrade", "backup", "downtime", "split", "v2backup", "gobench"}

// optInSections run only when -only names them: they need the v2 emulator
// image (debootstrap, root) and minutes of their own.
var optInSections = []string{"v2backup"}

func parseSections(only string) (map[string]bool, error) {
	out := map[string]bool{}
	if strings.TrimSpace(only) == "" {
		for _, s := range allSections {
			if !slices.Contains(optInSections, s) {
				out[s] = true
			}
		}
		return out, nil
	}
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allSections, s) {
			return nil, fmt.Errorf("-only: unknown section %q (want some of %s)", s, strings.Join(allSections, ", "))
		}
		out[s] = true
	}
	return out, nil
}

func (o options) has(section string) bool { return o.sections[section] }

// stage prints a progress line to stderr, so stdout holds only the table.
func stage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
