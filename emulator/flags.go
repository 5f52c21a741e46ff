package emulator

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultDataDir is GPUStack's data dir on Linux.
const DefaultDataDir = "/var/lib/gpustack"

// startOptions are the `gpustack start` flags the emulator acts on.
type startOptions struct {
	dataDir           string
	cacheDir          string
	port              int
	debug             bool
	bootstrapPassword string
	token             string
	disableWorker     bool
	// v2
	logDir      string
	dbPort      int
	databaseURL string
	// v2 worker role (--server-url)
	serverURL  string
	workerPort int
	workerName string
}

// usageError is argparse's complaint; the process exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

var (
	valueFlags = map[string]string{
		"--data-dir": "data-dir", "--cache-dir": "cache-dir", "--port": "port",
		"--bootstrap-password": "bootstrap-password", "--token": "token", "-t": "token",
		"--log-dir": "log-dir", "--database-port": "database-port", "--database-url": "database-url",
		"--server-url": "server-url", "-s": "server-url", "--worker-port": "worker-port", "--worker-name": "worker-name",
	}
	boolFlags = map[string]string{
		"--debug": "debug", "-d": "debug", "--disable-worker": "disable-worker",
	}
)

// parseStartFlags reads the flags tolerantly: unknown flags are accepted and
// ignored, with or without a value. CLI wins over GPUSTACK_<FLAG> env vars.
func parseStartFlags(args []string, getenv func(string) string, rel Release) (startOptions, error) {
	set := map[string]string{}
	var unrecognized []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") {
			unrecognized = append(unrecognized, arg)
			continue
		}
		name, value, hasValue := strings.Cut(arg, "=")
		if key, ok := boolFlags[name]; ok {
			set[key] = "true"
			continue
		}
		key, known := valueFlags[name]
		if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			value, hasValue = args[i+1], true
			i++
		}
		if key == "cache-dir" && !rel.hasCacheDirFlag() {
			unrecognized = append(unrecognized, arg)
			if hasValue && !strings.Contains(arg, "=") {
				unrecognized = append(unrecognized, value)
			}
			continue
		}
		if !known {
			continue
		}
		if !hasValue {
			return startOptions{}, &usageError{fmt.Sprintf("argument %s: expected one argument", name)}
		}
		set[key] = value
	}
	if len(unrecognized) > 0 {
		return startOptions{}, &usageError{"unrecognized arguments: " + strings.Join(unrecognized, " ")}
	}

	get := func(key string) string {
		if v, ok := set[key]; ok {
			return v
		}
		if key == "cache-dir" && !rel.hasCacheDirFlag() {
			return ""
		}
		return getenv("GPUSTACK_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_")))
	}
	opts := startOptions{
		dataDir:           get("data-dir"),
		cacheDir:          get("cache-dir"),
		debug:             envBool(get("debug")),
		disableWorker:     envBool(get("disable-worker")),
		bootstrapPassword: get("bootstrap-password"),
		token:             get("token"),
		port:              80,
		logDir:            get("log-dir"),
		databaseURL:       get("database-url"),
		dbPort:            DefaultDBPort,
		serverURL:         strings.TrimRight(get("server-url"), "/"),
		workerName:        get("worker-name"),
		workerPort:        DefaultWorkerPort,
	}
	if p := get("worker-port"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return startOptions{}, &usageError{fmt.Sprintf("argument --worker-port: invalid int value: '%s'", p)}
		}
		opts.workerPort = n
	}
	if opts.logDir == "" {
		opts.logDir = filepath.Join(opts.dataDirOrDefault(), "log")
	}
	if p := get("database-port"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return startOptions{}, &usageError{fmt.Sprintf("argument --database-port: invalid int value: '%s'", p)}
		}
		opts.dbPort = n
	}
	if opts.dataDir == "" {
		opts.dataDir = DefaultDataDir
	}
	if opts.cacheDir == "" {
		opts.cacheDir = filepath.Join(opts.dataDir, "cache")
	}
	if p := get("port"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return startOptions{}, &usageError{fmt.Sprintf("argument --port: invalid int value: '%s'", p)}
		}
		opts.port = n
	}
	return opts, nil
}

func (o startOptions) dataDirOrDefault() string {
	if o.dataDir == "" {
		return DefaultDataDir
	}
	return o.dataDir
}

func envBool(v string) bool {
	v = strings.ToLower(v)
	return v == "true" || v == "1"
}

// faults are the fault-injection knobs read from the container env.
type faults struct {
	startupDelay  time.Duration
	failMigration string
	healthFail    bool
	exitAfter     time.Duration
	devRevision   string
	// v2
	failDataMigration string // "copy" or "after-done"
	gap5774           bool
	cluster           clusterKnobs
}

func faultsFromEnv(getenv func(string) string) (faults, error) {
	f := faults{
		failMigration:     getenv(EnvFailMigration),
		devRevision:       getenv(EnvDevRevision),
		failDataMigration: getenv(EnvFailDataMigration),
		gap5774:           envBool(getenv(EnvV2Gap5774)),
	}
	var err error
	if f.cluster, err = clusterKnobsFromEnv(getenv); err != nil {
		return f, err
	}
	switch f.failDataMigration {
	case "", "copy", "after-done":
	default:
		return f, fmt.Errorf("%s=%q: want copy or after-done", EnvFailDataMigration, f.failDataMigration)
	}
	switch h := getenv(EnvHealth); h {
	case "", "ok":
	case "fail":
		f.healthFail = true
	default:
		return f, fmt.Errorf("%s=%q: want fail or ok", EnvHealth, h)
	}
	for env, dst := range map[string]*time.Duration{EnvStartupDelay: &f.startupDelay, EnvExitAfter: &f.exitAfter} {
		if v := getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return f, fmt.Errorf("%s: %w", env, err)
			}
			*dst = d
		}
	}
	if f.failMigration != "" && f.failMigration != "any" && revisionIndex(f.failMigration) < 0 && pgIndexIn(pgChain, f.failMigration) < 0 {
		return f, fmt.Errorf("%s=%q: not a revision of the chain", EnvFailMigration, f.failMigration)
	}
	return f, nil
}
