package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHosts deploys two emulator deployments on two named hosts that are
// both the local engine: one through its socket, one through the ssh://
// dialer (a stand-in ssh on PATH runs the local `docker system
// dial-stdio`, as sshd would on the remote). A third host whose socket does
// not exist makes plan name it and fail, while the others are still planned.
func TestHosts(t *testing.T) {
	t.Parallel()
	socket := docker.DaemonHost()
	if !strings.HasPrefix(socket, "unix://") {
		t.Skipf("the engine is at %s, not a unix socket", socket)
	}
	a := newDeployment(t, "hosta", options{version: "v0.5.1", body: `  host = "local"`})
	b := newDeployment(t, "hostb", options{version: "v0.5.1", body: `  host = "viassh"`})
	c := newDeployment(t, "hostc", options{version: "v0.5.1", body: `  host = "ghost"`})

	// The stand-in ssh records its arguments and proxies to the local engine.
	bin := t.TempDir()
	argsFile := filepath.Join(bin, "args")
	script := "#!/bin/sh\necho \"$@\" >> " + argsFile + "\nexec docker -H " + socket + " system dial-stdio\n"
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	a.env = append(a.env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	hosts := `host "local" {
  docker_host = "` + socket + `"
}

host "viassh" {
  docker_host = "ssh://e2e@engine.invalid:2222"
}
`
	ghost := `
host "ghost" {
  docker_host = "unix:///nonexistent/gsd-e2e/docker.sock"
}
`
	// One file: a's block (with its variable), then b's and c's without it.
	body := func(d *deployment) string {
		src, err := os.ReadFile(d.file)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(src), "\n")
		return rest
	}
	aSrc, err := os.ReadFile(a.file)
	if err != nil {
		t.Fatal(err)
	}
	two := hosts + string(aSrc) + body(b)
	three := hosts + ghost + string(aSrc) + body(b) + body(c)
	write := func(src string) {
		if err := os.WriteFile(a.file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write(two)
	r := a.gsd("plan")
	expectCode(t, r, 0)
	expectOutput(t, r, "Host local", "Host viassh",
		`gpustack "`+a.name+`" on host local`, `gpustack "`+b.name+`" on host viassh`)

	r = a.gsd("apply", "--auto-approve")
	expectCode(t, r, 0)
	r = a.gsd("status", "--json")
	expectCode(t, r, 0)
	var rows []statusRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if len(rows) != 2 {
		t.Fatalf("status --json: want two rows, got %+v", rows)
	}
	for i, d := range []*deployment{a, b} {
		row := rows[i]
		if row.Name != d.name || row.State != "running" || row.Version != "v0.5.1-cpu" || row.Revision != head051 {
			t.Errorf("status of %s: %+v, want running v0.5.1-cpu at %s", d.name, row, head051)
		}
		if ct := inspect(t, d.container); ct == nil || !ct.State.Running {
			t.Errorf("container %s is not running", d.container)
		}
	}
	// Health is probed on the loopback only for local engines.
	if rows[0].Health != "ok" {
		t.Errorf("health of %s on the local socket: %q, want ok", a.name, rows[0].Health)
	}
	args, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatalf("the ssh stand-in never ran: %v", err)
	}
	if want := "-o ConnectTimeout=30 -T -l e2e -p 2222 -- engine.invalid docker system dial-stdio"; !strings.Contains(string(args), want) {
		t.Errorf("ssh ran with %q, want %q", args, want)
	}

	r = a.gsd("plan", "--detailed-exitcode")
	expectCode(t, r, 0)
	expectOutput(t, r, "No changes")

	r = a.gsd("status", "--target", b.name)
	expectCode(t, r, 0)
	if !strings.Contains(r.stdout, b.name) || strings.Contains(r.stdout, a.name) {
		t.Errorf("status --target %s shows:\n%s", b.name, r.stdout)
	}

	// The ghost host: named as unreachable, the others still planned.
	write(three)
	r = a.gsd("plan")
	expectCode(t, r, 1)
	expectOutput(t, r, "host ghost is unreachable, so "+c.name+" could not be planned",
		"docker host ghost (unix:///nonexistent/gsd-e2e/docker.sock) does not answer",
		`gpustack "`+a.name+`" on host local`, `gpustack "`+b.name+`" on host viassh`,
		"No changes on the hosts that answered; ghost could not be reached")
	if strings.Contains(r.stdout, "Every deployment runs as its file says") {
		t.Errorf("the plan claims every deployment is as its file says while a host did not answer:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, `gpustack "`+c.name+`"`) {
		t.Errorf("the unreachable host's deployment was planned:\n%s", r.stdout)
	}
	r = a.gsd("plan", "--out", filepath.Join(a.dir, "partial.plan"))
	expectCode(t, r, 1)
	expectOutput(t, r, "the plan was not saved")
	if _, err := os.Stat(filepath.Join(a.dir, "partial.plan")); err == nil {
		t.Error("a plan lacking a host was saved")
	}
	r = a.gsd("apply", "--auto-approve")
	expectCode(t, r, 1)
	expectOutput(t, r, "docker host ghost (unix:///nonexistent/gsd-e2e/docker.sock)")

	// --target leaves the ghost host out: it is not even dialled.
	r = a.gsd("plan", "--target", a.name, "--target", b.name, "--detailed-exitcode")
	expectCode(t, r, 0)
	expectOutput(t, r, "No changes")
	r = a.gsd("plan", "--target", "nosuch")
	expectCode(t, r, 1)
	expectOutput(t, r, "--target nosuch: no deployment is named so")
}
