package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/gpustack-deploy/gpustack-deploy/emulator/image"
)

// The labels and names gpustack-deploy promises; spelled out here rather
// than imported, so that a rename in the product breaks this suite.
const (
	labelDeployment = "io.gpustack-deploy.deployment"
	labelVersion    = "io.gpustack-deploy.version"
	labelConfigHash = "io.gpustack-deploy.config-hash"
	labelRole       = "io.gpustack-deploy.role"
	previousSuffix  = "-gsd-previous"
	repository      = "gpustack/gpustack"
)

// Alembic heads of the releases the suite deploys.
const (
	head041 = "004c73a5c09e"
	head051 = "e6bf9e067296"
	head060 = "c45e397531d1"
)

// imageTags are the emulator images TestMain builds.
var imageTags = []string{"v0.4.1-cpu", "v0.5.1-cpu", "v0.6.0-cpu", "v0.7.1-cpu", "main-cpu"}

// v2Tags are the v2 emulator images, built on a PostgreSQL base image that
// debootstrap makes once per machine.
var v2Tags = []string{"v2.1.2", "v2.2.3"}

var (
	binary   string         // gpustack-deploy, built by TestMain
	docker   *client.Client // the engine, for the suite's own checks
	noEngine string         // why every test skips, when no engine answers
	// noToolbox says why tests that work on files inside volumes (cache
	// splits, fresh redeploys) skip: the emulator images were built
	// without busybox-static.
	noToolbox string
	// noPostgres says why the v2 tests skip: the PostgreSQL base image
	// cannot be built here (no debootstrap, or not root).
	noPostgres string
)

// needPostgres skips a test that deploys v2 images when they could not be
// built; with CI=true that is a failure.
func needPostgres(t testing.TB) {
	t.Helper()
	if noEngine != "" {
		t.Skip(noEngine)
	}
	if noPostgres == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(noPostgres)
	}
	t.Skip(noPostgres)
}

// needToolbox skips a test that runs shell scripts in the emulator images
// when they have no toolbox; with CI=true that is a failure.
func needToolbox(t testing.TB) {
	t.Helper()
	if noToolbox == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(noToolbox)
	}
	t.Skip(noToolbox)
}

func TestMain(m *testing.M) { os.Exit(setup(m)) }

func setup(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		pingCtx, pingCancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = cli.Ping(pingCtx)
		pingCancel()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "e2e: CI=true and no Docker engine answers: %v\n", err)
			return 1
		}
		noEngine = fmt.Sprintf("no Docker engine answers (%v); with CI=true this is a failure", err)
		return m.Run()
	}
	defer cli.Close()
	docker = cli

	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "gsd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	binary = filepath.Join(tmp, "gpustack-deploy")
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/gpustack-deploy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build gpustack-deploy: %v\n%s", err, out)
		return 1
	}
	tags := imageTags
	if image.PostgresBaseAvailable() {
		tags = append(append([]string(nil), imageTags...), v2Tags...)
	} else {
		noPostgres = "the v2 emulator images need debootstrap and root to build their PostgreSQL base (apt-get install debootstrap; .ci/run does)"
	}
	var specs []image.Spec
	for _, tag := range tags {
		s, err := image.SpecFor(repository, tag)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		specs = append(specs, s)
	}
	if err := image.Build(ctx, cli, root, specs...); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build emulator images: %v\n", err)
		return 1
	}
	if !image.ToolboxAvailable() {
		noToolbox = "the emulator images have no shell toolbox: apt-get install busybox-static (.ci/run does)"
	}
	return m.Run()
}
