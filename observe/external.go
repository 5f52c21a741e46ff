package observe

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
)

// An external PostgreSQL (database_url) is read the way the embedded one
// is, with PGQuery in a read-only transaction, by psql in a one-off
// container of backup.tool_image on the deployment's network: it reaches
// the database as GPUStack does. The URL is in the container's
// environment only.

// ExternalURLEnv carries the database URL into one-off containers.
const ExternalURLEnv = "GSD_DATABASE_URL"

// externalQueryScript runs the query file $1 against $GSD_DATABASE_URL.
const externalQueryScript = `set -eu
PGOPTIONS="-c default_transaction_read_only=on" PGCONNECT_TIMEOUT=10 exec psql -X -q -A -t --dbname="$` + ExternalURLEnv + `" -f "$1"
`

// ToolRunner runs one-off containers.
type ToolRunner interface {
	RunTool(ctx context.Context, t engine.Tool) (engine.ToolResult, error)
}

// Network is the network mode of a deployment's container.
func Network(d config.Deployment) string {
	if d.NetworkMode != "" {
		return d.NetworkMode
	}
	return config.NetworkBridge
}

// ReadExternal reads the external PostgreSQL of d with psql from a one-off
// container of image. Failures become DBUnknown with a reason; the URL is
// never part of it.
func ReadExternal(ctx context.Context, eng ToolRunner, d config.Deployment, image string) Database {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := eng.RunTool(ctx, engine.Tool{
		Image: image, Deployment: d.Name, Script: externalQueryScript, Args: []string{"/tmp/gsd-in/query.sql"},
		Env: []string{ExternalURLEnv + "=" + d.DatabaseURL.S}, Network: Network(d),
		Input: FileTar("gsd-in/query.sql", PGQuery), InputDir: "/tmp",
	})
	if err != nil {
		return Database{Status: DBUnknown, Reason: "read the external database: " + err.Error()}
	}
	if res.ExitCode != 0 {
		return Database{Status: DBUnknown, Reason: fmt.Sprintf("read the external database: psql exited %d: %s", res.ExitCode, lastLines(strings.ReplaceAll(string(res.Stderr), d.DatabaseURL.S, "<database_url>"), 3))}
	}
	db, err := ParsePGOutput(res.Stdout)
	if err != nil {
		return Database{Status: DBUnknown, Reason: "read the external database: " + err.Error()}
	}
	db.Engine = ""
	return db
}

// readExternal reads d's external database when it can be done without
// pulling: PostgreSQL, and backup.tool_image already on the host. nil
// means not read.
func readExternal(ctx context.Context, eng *engine.Client, d config.Deployment) *Database {
	if d.DatabaseScheme != config.SchemePostgreSQL || d.Backup.ToolImage == "" {
		return nil
	}
	img, err := eng.InspectImage(ctx, d.Backup.ToolImage)
	if err != nil || img == nil {
		return nil
	}
	db := ReadExternal(ctx, eng, d, img.ID)
	return &db
}

// FileTar is a tar stream holding one file, name (one directory deep),
// with content: how a script reaches a one-off container.
func FileTar(name, content string) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	if dir, _, ok := strings.Cut(name, "/"); ok {
		_ = tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now})
	}
	_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content)), ModTime: now})
	_, _ = tw.Write([]byte(content))
	_ = tw.Close()
	return &buf
}
