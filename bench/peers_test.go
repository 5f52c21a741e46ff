package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseFig(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"414.6 ms": 414600 * time.Microsecond,
		"1.17 s":   1170 * time.Millisecond,
		"14.3 s":   14300 * time.Millisecond,
		"—":        0,
		"12 MiB":   0,
		"":         0,
	} {
		if got := parseFig(in); got != want {
			t.Errorf("parseFig(%q) = %v, want %v", in, got, want)
		}
	}
}

// The peers table reads the upgrade, downtime and backup figures from the
// report's own tables, as renderReport and the other sections write them.
func TestPeersTableReferences(t *testing.T) {
	doc := strings.Join([]string{
		"| unguarded: stop, remove, create, start through the Engine API, until `/healthz` = 200 | 15 | 400.0 ms | 450.2 ms | 389.0 ms | — | — | 1.00× | baseline |",
		"| `gpustack-deploy apply`, `backup { before_upgrade = false }` | 15 | 500.0 ms | 531.6 ms | 498.1 ms | 22.0 ms | 19.3 MiB | 1.24× | x |",
		"| `gpustack-deploy apply`, default backup policy (backup before upgrade) | 15 | 600.0 ms | 655.3 ms | 584.5 ms | 28.9 ms | 19.8 MiB | 1.50× | y |",
		"| emulator's own start-up | unguarded: stop, remove, create, start (Engine API) | 10 | 1.00 s | 1.18 s | 1.13 s | 1.18 s | 1.00× | 9.6 ms | 1.19 s |",
		"| emulator's own start-up | guarded: `gpustack-deploy apply --auto-approve`, default backup policy | 10 | 1.50 s | 1.28 s | 1.24 s | 1.30 s | 1.08× | 59.1 ms | 1.40 s |",
		"| GPUSTACK_EMULATOR_STARTUP_DELAY=3s | unguarded: stop, remove, create, start (Engine API) | 10 | 3.00 s | 3.35 s | 3.29 s | 3.36 s | 1.00× | 9.8 ms | 3.42 s |",
		"| GPUSTACK_EMULATOR_STARTUP_DELAY=3s | guarded: `gpustack-deploy apply --auto-approve`, default backup policy | 10 | 3.30 s | 3.45 s | 3.41 s | 3.49 s | 1.03× | 64.5 ms | 3.64 s |",
		"| raw copy: `CopyFromContainer` of `database.db` from the stopped container into a local file, `fsync` (stop, start not included) | 5 | 2.00 s | 1.69 s | 3.37 s | 529 | 1.00× |",
		"| `gpustack-deploy backup -f …`, the process (start-up, observe, stop, back up, start, exit) | 5 | 8.00 s | 6.89 s | 9.86 s | 122 | 4.35× |",
	}, "\n")
	pr := &peersResults{composeVersion: "1.29.2", runs: 1, loadStart: "1.00 2.00 3.00 1/2 3", loadEnd: "4.00 5.00 6.00 1/2 3"}
	for m := range numNoop {
		pr.noop[m].add(sample{wall: time.Duration(m+1) * 100 * time.Millisecond})
	}
	for m := range numRec {
		pr.recreate[m].add(sample{wall: time.Second})
		pr.recHealthy[m] = []time.Duration{time.Second}
		pr.recDown[m] = []time.Duration{time.Second}
		pr.recWindows[m] = []int{1}
	}
	got := peersTable(pr, doc)
	for _, want := range []string{
		"verified: 600.0 ms | stop, remove, create, start, until `/healthz` 200: 400.0 ms | 1.50× |",
		": 500.0 ms | the same unguarded replacement: 400.0 ms | 1.25× |",
		"guarded, with backup: 1.50 s | unguarded: 1.00 s | 1.50× |",
		"… with GPUSTACK_EMULATOR_STARTUP_DELAY=3s (a realistic start-up) | guarded, with backup: 3.30 s | unguarded: 3.00 s | 1.10× |",
		"(verified): 8.00 s | raw copy, container stopped: 2.00 s | 4.00× |",
		"| `gpustack-deploy plan --detailed-exitcode` (exit 0) | as found: 0 containers, 0 volumes | 1 | 100.0 ms |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("peers table lacks %q:\n%s", want, got)
		}
	}
	if got := peersTable(pr, ""); !strings.Contains(got, "*Backup*: not in this report") {
		t.Errorf("without the tables, the references should say so:\n%s", got)
	}
	if s := peersSummary(pr); !strings.Contains(s, "load average `1.00 2.00 3.00` → `4.00 5.00 6.00`") {
		t.Errorf("summary: %s", s)
	}
}

// A section whose name holds a digit (v2backup) in the Sections line must
// not stop the next merge from finding it.
func TestMergePeersAfterV2backup(t *testing.T) {
	doc := strings.Replace(reportBefore, "Sections: plan, downtime, gobench", "Sections: plan, downtime, v2backup, gobench", 1)
	got, err := mergeReport(doc, "peers", []part{{placeResults, "### Peers\n\n| p |\n\n"}}, peersReproduce)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "### Peers\n") || !strings.Contains(got, peersReproduce+"\n") {
		t.Errorf("peers not merged:\n%s", got)
	}
	if !strings.Contains(got, "Sections: plan, downtime, ") || !strings.Contains(got, "peers") {
		t.Errorf("Sections line:\n%s", got)
	}
}
