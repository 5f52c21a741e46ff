//go:build linux

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkCluster measures a cluster's rollouts on private engines: a
// v2.2.3 server on h0 and 16 workers, four on each of h1…h4. It reports
//
//   - the time of a rollout recreating 1, 4 and 16 workers with
//     max_parallel 1 and 4, against the serial sum of the same workers'
//     single-worker rollouts (apply --target wK), and the parallel
//     efficiency: serial sum / (rollout time × min(max_parallel, workers));
//   - the time of a no-op plan of the 17 deployments on 5 hosts, against
//     a no-op plan of the server alone (--target srv: 1 deployment, 1 host).
//
// Run it once: go test -run '^$' -bench Cluster -benchtime 1x ./e2e/
func BenchmarkCluster(b *testing.B) {
	const workers, hosts = 16, 4
	needPostgres(b)
	c := startCluster(b, hosts+1, []string{repository + ":v2.2.3"})
	d := newDeployment(b, "bench", options{variant: "none"})
	key := "gpustack_" + randomHex(12)
	d.env = append(d.env, "GPUSTACK_DEPLOY_VAR_api_key="+key)
	writeBenchCluster(b, c, d, workers, hosts)
	// gsd runs gpustack-deploy in the cluster's namespace, quietly: the
	// output is shown only when the run fails.
	gsd := func(args ...string) (result, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := c.command(d, ctx, append([]string{args[0], "-f", d.file}, args[1:]...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			b.Fatalf("gpustack-deploy %v: %v", args, err)
		}
		r := result{code: cmd.ProcessState.ExitCode(), stdout: out.String()}
		if r.code != 0 {
			b.Logf("$ gpustack-deploy %v\nexit %d\n%s", args, r.code, out.String())
		}
		return r, took
	}
	if r, took := gsd("apply", "--auto-approve", "--var", "parallel=4"); r.code != 0 {
		b.Fatalf("install: exit %d", r.code)
	} else {
		b.Logf("installed the server and %d workers in %s", workers, took.Round(time.Millisecond))
	}
	// vals are the workers' roll values as deployed; a rollout changes
	// some and passes all, so that the others stay as they are.
	roll, vals := 0, make([]int, workers+1)
	vars := func(parallel int) []string {
		args := []string{"--var", fmt.Sprintf("parallel=%d", parallel)}
		for k := 1; k <= workers; k++ {
			args = append(args, "--var", fmt.Sprintf("roll_w%d=%d", k, vals[k]))
		}
		return args
	}
	// rollout recreates workers first…last, parallel at a time.
	rollout := func(first, last, parallel int, target ...string) time.Duration {
		roll++
		for k := first; k <= last; k++ {
			vals[k] = roll
		}
		args := append([]string{"apply", "--auto-approve"}, vars(parallel)...)
		for _, t := range target {
			args = append(args, "--target", t)
		}
		r, took := gsd(args...)
		if r.code != 0 {
			b.Fatalf("rollout of w%d…w%d: exit %d", first, last, r.code)
		}
		if want := fmt.Sprintf("Plan: %d replace container", last-first+1); !strings.Contains(r.stdout, want) {
			b.Fatalf("rollout of w%d…w%d: the plan is not %q:\n%s", first, last, want, r.stdout)
		}
		return took
	}

	// The serial reference: each worker alone.
	single := make([]time.Duration, workers+1)
	for k := 1; k <= workers; k++ {
		single[k] = rollout(k, k, 1, fmt.Sprintf("w%d", k))
	}

	var lines []string
	for _, n := range []int{1, 4, 16} {
		var serial time.Duration
		for k := 1; k <= n; k++ {
			serial += single[k]
		}
		for _, p := range []int{1, 4} {
			took := rollout(1, n, p)
			eff := serial.Seconds() / (took.Seconds() * float64(min(p, n)))
			b.ReportMetric(took.Seconds(), fmt.Sprintf("s/rollout-%dw-p%d", n, p))
			lines = append(lines, fmt.Sprintf("| %d | %d | %.2f s | %.2f s | %.2f× | %.0f%% |", n, p, took.Seconds(), serial.Seconds(), serial.Seconds()/took.Seconds(), 100*eff))
		}
	}

	// No-op plans: the whole cluster, and the server alone.
	noop := func(args ...string) time.Duration {
		var runs []time.Duration
		for range 7 {
			r, took := gsd(append([]string{"plan", "--detailed-exitcode", "--var", "parallel=4"}, args...)...)
			if r.code != 0 {
				b.Fatalf("no-op plan %v: exit %d", args, r.code)
			}
			runs = append(runs, took)
		}
		sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
		return runs[len(runs)/2]
	}
	args := vars(4)[2:] // noop passes parallel itself
	whole := noop(args...)
	alone := noop(append(args, "--target", "srv")...)
	b.ReportMetric(whole.Seconds()*1000, "ms/noop-plan-17-deployments-5-hosts")
	b.ReportMetric(alone.Seconds()*1000, "ms/noop-plan-1-deployment")
	b.Logf("\n| Workers | max_parallel | Rollout | Serial sum | Speed-up | Parallel efficiency |\n|---|---|---|---|---|---|\n%s\n\nsingle-worker rollouts: %s\nno-op plan, median of 7: %d deployments on %d hosts %.1f ms; the server alone %.1f ms",
		strings.Join(lines, "\n"), durations(single[1:]), workers+1, hosts+1, whole.Seconds()*1000, alone.Seconds()*1000)
}

func durations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Round(time.Millisecond).String()
	}
	return strings.Join(parts, " ")
}

// writeBenchCluster writes the file of the benchmark's cluster: the server
// on h0, workers w1…wN spread over h1…hN, each with its roll variable.
func writeBenchCluster(b *testing.B, c *cluster, d *deployment, workers, hosts int) {
	var s strings.Builder
	s.WriteString("variable \"api_key\" { sensitive = true }\nvariable \"parallel\" { default = 1 }\n")
	for k := 1; k <= workers; k++ {
		fmt.Fprintf(&s, "variable \"roll_w%d\" { default = \"0\" }\n", k)
	}
	for i, h := range c.hosts {
		fmt.Fprintf(&s, "host \"h%d\" {\n  docker_host = %q\n  address     = \"127.0.0.1\"\n}\n", i, h.host())
	}
	fmt.Fprintf(&s, `gpustack "srv" {
  host           = "h0"
  version        = "v2.2.3"
  container_name = "gsd-bench-srv"
  network_mode   = "host"
  container_port = %d
  api_key        = var.api_key
  env = {
    GPUSTACK_EMULATOR_ADMIN_API_KEY      = var.api_key
    GPUSTACK_EMULATOR_HEARTBEAT_INTERVAL = "0.5"
  }
  volume "data" { name = "srv-data" }
  backup { dir = "./backups" }
  policy { pull = "never" }
  rollout { max_parallel = var.parallel }
}
`, c.port())
	for k := 1; k <= workers; k++ {
		fmt.Fprintf(&s, `worker "w%d" {
  host        = "h%d"
  server      = gpustack.srv
  worker_port = %d
  env = {
    GPUSTACK_EMULATOR_HEARTBEAT_INTERVAL = "0.5"
    GSD_ROLL                             = var.roll_w%d
  }
  volume "data" { name = "w%d-data" }
  policy { pull = "never" }
  health { timeout = "60s" }
}
`, k, (k-1)%hosts+1, c.port(), k, k)
	}
	if err := os.WriteFile(d.file, []byte(s.String()), 0o644); err != nil {
		b.Fatal(err)
	}
}
