package render

import (
	"fmt"
	"io"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/executor"
)

// Results writes the short report at the end of an apply.
func Results(w io.Writer, results []executor.Result, took time.Duration) {
	if len(results) == 0 {
		return
	}
	fmt.Fprintln(w)
	for _, r := range results {
		took := took
		if r.Took > 0 {
			took = r.Took
		}
		switch {
		case r.RolledBack && r.Worker:
			fmt.Fprintf(w, "%s: FAILED (%s), rolled back: its previous container runs again on its data volume.\n", r.Deployment, r.Failure.Kind)
		case r.Failure == nil && r.Verified:
			fmt.Fprintf(w, "%s: applied and verified in %s.\n", r.Deployment, took.Round(time.Millisecond))
		case r.Failure == nil:
			fmt.Fprintf(w, "%s: applied in %s.\n", r.Deployment, took.Round(time.Millisecond))
		case r.Failure.Kind == executor.FailCleanup:
			fmt.Fprintf(w, "%s: applied and verified, but a clean-up step failed (see the note).\n", r.Deployment)
		case r.RolledBack:
			fmt.Fprintf(w, "%s: FAILED (%s), rolled back: the previous version runs again on the data it had.\n", r.Deployment, r.Failure.Kind)
		default:
			fmt.Fprintf(w, "%s: FAILED (%s).\n", r.Deployment, r.Failure.Kind)
		}
		if r.Backup != "" {
			fmt.Fprintf(w, "  backup taken before the change: %s\n", r.Backup)
		}
		if f := r.Failure; f != nil {
			fmt.Fprintf(w, "  cause: %s\n", f.Message)
			if f.LogLine != "" {
				fmt.Fprintf(w, "  log:   %s\n", f.LogLine)
			}
			if f.LogFile != "" {
				fmt.Fprintf(w, "  full log of the failed container: %s\n", f.LogFile)
			}
			if len(f.LogTail) > 0 && f.LogLine == "" {
				fmt.Fprintln(w, "  last log lines:")
				for _, l := range f.LogTail {
					fmt.Fprintf(w, "    %s\n", l)
				}
			}
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
}
