package observe

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/engine"
)

const samplePGOutput = `S|8123456
C|alembic_version|version_num
C|models|id
C|models|name
C|workers|id
N|alembic_version|1
N|models|3
N|workers|0
R|7c5e3f9a2d18
`

func TestParsePGOutput(t *testing.T) {
	db, err := ParsePGOutput([]byte(samplePGOutput))
	if err != nil {
		t.Fatal(err)
	}
	want := Database{
		Status: DBRead, Engine: catalog.EngineEmbeddedPostgres, Revision: "7c5e3f9a2d18", Size: 8123456,
		Tables: map[string][]string{"alembic_version": {"version_num"}, "models": {"id", "name"}, "workers": {"id"}},
		Rows:   map[string]int64{"alembic_version": 1, "models": 3, "workers": 0},
	}
	if !reflect.DeepEqual(db, want) {
		t.Errorf("got %+v\nwant %+v", db, want)
	}
}

func TestParsePGOutputRefusesGarbage(t *testing.T) {
	for name, out := range map[string]string{
		"no size":        "C|models|id\n",
		"stray line":     "S|1\nERROR: permission denied\n",
		"bad count":      "S|1\nN|models|many\n",
		"two revisions":  "S|1\nR|a\nR|b\n",
		"empty":          "",
		"size not a int": "S|x\n",
	} {
		if _, err := ParsePGOutput([]byte(out)); err == nil {
			t.Errorf("%s: accepted %q", name, out)
		}
	}
}

func TestParsePGOutputUnstamped(t *testing.T) {
	db, err := ParsePGOutput([]byte("S|7000000\nN|empty_table|0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if db.Revision != "" || db.Tables["empty_table"] == nil || db.Rows["empty_table"] != 0 {
		t.Errorf("got %+v", db)
	}
}

func TestPGPort(t *testing.T) {
	for _, c := range []struct {
		args, env []string
		want      int
	}{
		{nil, nil, 5432},
		{[]string{"--disable-worker"}, []string{"GPUSTACK_DATABASE_PORT=5434"}, 5434},
		{[]string{"--database-port", "5433"}, []string{"GPUSTACK_DATABASE_PORT=5434"}, 5433},
		{[]string{"--database-port=5435"}, nil, 5435},
		{[]string{"--database-port"}, nil, 5432},
	} {
		if got := PGPort(c.args, c.env); got != c.want {
			t.Errorf("PGPort(%v, %v) = %d, want %d", c.args, c.env, got, c.want)
		}
	}
}

// fakePG answers the calls ReadPostgres makes.
type fakePG struct {
	files map[string]bool
	exec  func(o engine.ExecOptions) (int, error)
	tool  func(t engine.Tool) (engine.ToolResult, error)
	owner [2]int
	tools []engine.Tool
}

func (f *fakePG) Stat(_ context.Context, _, p string) (bool, int64, error) { return f.files[p], 0, nil }
func (f *fakePG) CopyFile(context.Context, string, string, string) (int64, error) {
	return 0, errors.New("not used")
}
func (f *fakePG) ExecStream(_ context.Context, _ string, o engine.ExecOptions) (int, error) {
	return f.exec(o)
}
func (f *fakePG) RunTool(_ context.Context, t engine.Tool) (engine.ToolResult, error) {
	f.tools = append(f.tools, t)
	return f.tool(t)
}
func (f *fakePG) Owner(context.Context, string, string) (int, int, error) {
	return f.owner[0], f.owner[1], nil
}

func TestFindPGDirPrefersPostgresql(t *testing.T) {
	f := &fakePG{files: map[string]bool{"/d/postgresql/data/PG_VERSION": true, "/d/postgres/data/PG_VERSION": true}}
	live, stale, err := FindPGDir(context.Background(), f, "c", "/d")
	if err != nil || live != "postgresql/data" || !reflect.DeepEqual(stale, []string{"postgres/data"}) {
		t.Errorf("got %q %v %v", live, stale, err)
	}
	f.files = map[string]bool{"/d/postgres/data/PG_VERSION": true}
	if live, _, _ := FindPGDir(context.Background(), f, "c", "/d"); live != "postgres/data" {
		t.Errorf("legacy only: got %q", live)
	}
}

func TestReadPostgresRunningUsesPsqlReadOnly(t *testing.T) {
	var seen engine.ExecOptions
	f := &fakePG{files: map[string]bool{"/var/lib/gpustack/run/state_migration_done": true}, exec: func(o engine.ExecOptions) (int, error) {
		seen = o
		_, _ = o.Stdout.Write([]byte(samplePGOutput))
		return 0, nil
	}}
	db := ReadPostgres(context.Background(), f, PGTarget{ID: "c", DataDir: "/var/lib/gpustack", Running: true, Port: 5433}, "postgresql/data")
	if db.Status != DBRead || db.Revision != "7c5e3f9a2d18" || db.Rows["models"] != 3 || !db.MigrationDone || db.PGDir != "postgresql/data" {
		t.Fatalf("got %+v", db)
	}
	if !strings.Contains(strings.Join(seen.Env, " "), "default_transaction_read_only=on") {
		t.Errorf("psql runs without read-only transactions: env %v", seen.Env)
	}
	if args := strings.Join(seen.Cmd, " "); !strings.Contains(args, " 5433 ") {
		t.Errorf("psql is not pointed at port 5433: %v", seen.Cmd)
	}
	if len(f.tools) != 0 {
		t.Errorf("a running database was read through a one-off container")
	}
}

func TestReadPostgresStoppedUsesReadOnlyOneOff(t *testing.T) {
	f := &fakePG{owner: [2]int{9999, 9999}, tool: func(t engine.Tool) (engine.ToolResult, error) {
		return engine.ToolResult{Stdout: []byte(samplePGOutput)}, nil
	}}
	data := config.Volume{Name: "v-data"}
	db := ReadPostgres(context.Background(), f, PGTarget{ID: "h", DataDir: "/data", Image: "sha256:img", Deployment: "d", Data: data}, "postgres/data")
	if db.Status != DBRead || db.Revision != "7c5e3f9a2d18" || db.PGDir != "postgres/data" {
		t.Fatalf("got %+v", db)
	}
	if len(f.tools) != 1 {
		t.Fatalf("%d tool containers, want 1", len(f.tools))
	}
	tool := f.tools[0]
	if tool.User != "9999:9999" || tool.Image != "sha256:img" || tool.Args[0] != "/var/lib/gpustack/postgres/data" {
		t.Errorf("tool %+v", tool)
	}
	if len(tool.Mounts) != 1 || !tool.Mounts[0].ReadOnly || tool.Mounts[0].Volume != "v-data" {
		t.Errorf("the data volume is not mounted read-only: %+v", tool.Mounts)
	}
}

func TestReadPostgresFailureIsUnknown(t *testing.T) {
	f := &fakePG{exec: func(o engine.ExecOptions) (int, error) {
		_, _ = o.Stderr.Write([]byte("psql: error: connection refused\n"))
		return 2, nil
	}}
	db := ReadPostgres(context.Background(), f, PGTarget{ID: "c", DataDir: "/var/lib/gpustack", Running: true}, "postgresql/data")
	if db.Status != DBUnknown || !strings.Contains(db.Reason, "connection refused") || db.Engine != catalog.EngineEmbeddedPostgres {
		t.Errorf("got %+v", db)
	}
	f = &fakePG{}
	db = ReadPostgres(context.Background(), f, PGTarget{ID: "h", DataDir: "/data"}, "postgresql/data")
	if db.Status != DBUnknown || !strings.Contains(db.Reason, "no local image") {
		t.Errorf("no image: got %+v", db)
	}
}
