package emulator

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

const mainUsage = "usage: gpustack [-h] {start,version,emulator} ..."

// Main runs the emulator's command line (args without the program name)
// and returns the process exit code. getenv is os.Getenv outside tests;
// cancelling ctx (SIGTERM, SIGINT) stops a running server cleanly.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s\ngpustack: error: the following arguments are required: command\n", mainUsage)
		return 2
	}
	switch args[0] {
	case "start", "version":
		id, err := identityFromEnv(getenv)
		if err != nil {
			fmt.Fprintf(stderr, "gpustack emulator: %v\n", err)
			return 2
		}
		if args[0] == "start" {
			return runStart(ctx, id, args[1:], getenv, stdout, stderr)
		}
		return runVersion(id, args[1:], stdout, stderr)
	case "emulator":
		return runEmulator(ctx, args[1:], getenv, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "%s\ngpustack: error: argument command: invalid choice: '%s'\n", mainUsage, args[0])
		return 2
	}
}

func runVersion(id identity, args []string, stdout, stderr io.Writer) int {
	short := false
	for _, a := range args {
		if a != "--short" {
			fmt.Fprintf(stderr, "%s\ngpustack: error: unrecognized arguments: %s\n", mainUsage, a)
			return 2
		}
		short = true
	}
	if short {
		fmt.Fprintln(stdout, id.release.Version())
	} else {
		fmt.Fprintf(stdout, "%s (%s)\n", id.release.Version(), id.commit)
	}
	return 0
}

// runEmulator serves the test-only subcommands that inspect and fill the
// database while the server runs: rows, seed, sql and workers; and debug,
// which asks the running server (cli_cluster.go).
func runEmulator(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: gpustack emulator {rows,seed,sql,workers,debug} [--data-dir DIR] ...")
		return 2
	}
	if args[0] == "debug" {
		return runEmulatorDebug(ctx, args[1:], getenv, procOneCmdline, stdout, stderr)
	}
	fs := flag.NewFlagSet("gpustack emulator "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data dir (default $GPUSTACK_DATA_DIR or "+DefaultDataDir+")")
	dbURL := fs.String("database-url", "", "external PostgreSQL or MySQL (default $"+EnvDatabaseURL+", then PID 1's --database-url)")
	var counts seedCounts
	if args[0] == "seed" {
		fs.IntVar(&counts.models, "models", 0, "models to insert")
		fs.IntVar(&counts.instances, "instances", 0, "model instances to insert")
		fs.IntVar(&counts.users, "users", 0, "users to insert")
		fs.StringVar(&counts.worker, "worker", "", "v2: name of the worker the instances run on")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *dataDir == "" {
		*dataDir = getenv("GPUSTACK_DATA_DIR")
	}
	if *dataDir == "" {
		*dataDir = DefaultDataDir
	}
	// SQLite-era releases ignore the URL at start (the emulator keeps
	// database.db), so their subcommands do too.
	if u := databaseURLOf(*dbURL, getenv, procOneCmdline); u != "" && !sqliteEra(getenv) {
		ext, err := parseDatabaseURL(u)
		if err != nil {
			return fail(stderr, args[0], err)
		}
		return runEmulatorPG(ctx, args[0], fs.Args(), ext.driver, ext.dsn, counts, stdout, stderr)
	}
	if usePostgres(*dataDir, getenv) {
		port, err := pgPortOf(*dataDir)
		if err != nil {
			return fail(stderr, args[0], err)
		}
		return runEmulatorPG(ctx, args[0], fs.Args(), "postgres", pgDSN(port, pgDatabase), counts, stdout, stderr)
	}
	// The zero Release keeps whatever journal mode the file already has.
	db, err := openDB(*dataDir, Release{}, true)
	if err != nil {
		fmt.Fprintf(stderr, "gpustack emulator %s: %v\n", args[0], err)
		return 1
	}
	defer db.Close()

	switch args[0] {
	case "rows":
		counts, err := rowCounts(ctx, db)
		if err != nil {
			return fail(stderr, "rows", err)
		}
		return printJSON(stdout, stderr, counts)
	case "seed":
		if err := seed(ctx, db, counts); err != nil {
			return fail(stderr, "seed", err)
		}
		counts, err := rowCounts(ctx, db)
		if err != nil {
			return fail(stderr, "seed", err)
		}
		return printJSON(stdout, stderr, counts)
	case "sql":
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "usage: gpustack emulator sql [--data-dir DIR] STATEMENT")
			return 2
		}
		out, err := runSQL(ctx, db, fs.Arg(0))
		if err != nil {
			return fail(stderr, "sql", err)
		}
		return printJSON(stdout, stderr, out)
	case "workers":
		return runEmulatorWorkers(ctx, db, fs.Args(), stdout, stderr)
	default:
		fmt.Fprintf(stderr, "gpustack emulator: unknown subcommand %q\n", args[0])
		return 2
	}
}

// runSQL executes one statement; queries return their rows as objects.
func runSQL(ctx context.Context, db *sql.DB, stmt string) (any, error) {
	head := strings.ToUpper(strings.Fields(stmt + " x")[0])
	if head != "SELECT" && head != "PRAGMA" && head != "WITH" && head != "SHOW" && head != "TABLE" && head != "VALUES" {
		res, err := db.ExecContext(ctx, stmt)
		if err != nil {
			return nil, err
		}
		n, _ := res.RowsAffected()
		return map[string]int64{"rows_affected": n}, nil
	}
	rows, err := db.QueryContext(ctx, stmt)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			if b, ok := vals[i].([]byte); ok {
				vals[i] = string(b)
			}
			row[c] = vals[i]
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "gpustack emulator %s: %v\n", cmd, err)
	return 1
}

func printJSON(stdout, stderr io.Writer, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return fail(stderr, "json", err)
	}
	fmt.Fprintln(stdout, string(b))
	return 0
}

// sqliteEra: the environment names a release before v2.
func sqliteEra(getenv func(string) string) bool {
	rel, err := ParseRelease(getenv(EnvRelease))
	return getenv(EnvRelease) != "" && err == nil && !rel.V2()
}

// usePostgres: the subcommands read the embedded PostgreSQL in v2 images,
// or, without a release in the environment, when one runs on the data dir.
func usePostgres(dataDir string, getenv func(string) string) bool {
	if name := getenv(EnvRelease); name != "" {
		rel, err := ParseRelease(name)
		return err == nil && rel.V2()
	}
	_, err := pgPortOf(dataDir)
	return err == nil
}

// runEmulatorPG is runEmulator against PostgreSQL: the running embedded
// one as root over 127.0.0.1, or the external database of
// --database-url, PostgreSQL or MySQL (driver "mysql"); the output is the
// same as in the SQLite era.
func runEmulatorPG(ctx context.Context, cmd string, args []string, driver, dsn string, counts seedCounts, stdout, stderr io.Writer) int {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	defer db.Close()
	switch cmd {
	case "rows":
		counts, err := pgRowCounts(ctx, db)
		if err != nil {
			return fail(stderr, "rows", err)
		}
		return printJSON(stdout, stderr, counts)
	case "seed":
		if err := pgSeed(ctx, db, counts); err != nil {
			return fail(stderr, "seed", err)
		}
		counts, err := pgRowCounts(ctx, db)
		if err != nil {
			return fail(stderr, "seed", err)
		}
		return printJSON(stdout, stderr, counts)
	case "sql":
		if len(args) != 1 {
			fmt.Fprintln(stderr, "usage: gpustack emulator sql [--data-dir DIR] STATEMENT")
			return 2
		}
		out, err := runSQL(ctx, db, args[0])
		if err != nil {
			return fail(stderr, "sql", errors.New(pyPGError(err)))
		}
		return printJSON(stdout, stderr, out)
	case "workers":
		return runEmulatorWorkers(ctx, db, args, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "gpustack emulator: unknown subcommand %q\n", cmd)
		return 2
	}
}
