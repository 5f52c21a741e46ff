// Command gpustack-deploy deploys and upgrades GPUStack on Docker from
// declarative HCL files: `plan` shows what would change, `apply` changes it
// with verified backups, migration checks and automatic rollback.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

// Exit codes, the only place they are defined.
const (
	exitOK         = 0
	exitError      = 1 // invalid input, refused plan, failed command
	exitChanges    = 2 // plan --detailed-exitcode: changes are pending
	exitRolledBack = 3 // apply failed and the deployment was put back as it was
	exitBroken     = 4 // apply failed and could not go back: read the report
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// stdio is where a command reads and writes.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	environ  []string
	// tty is true when out is an interactive terminal; errTTY when err is.
	tty, errTTY bool
	// describe, when set, receives each command's flag set instead of the
	// command running (help and completion read the flags this way).
	describe func(*pflag.FlagSet)
	// lines reads in line by line; one reader for every question asked.
	lines *bufio.Reader
}

// readLine reads one answer from standard input, trimmed; ok is false
// when there is none.
func (s *stdio) readLine() (string, bool) {
	if s.lines == nil {
		s.lines = bufio.NewReader(s.in)
	}
	line, err := s.lines.ReadString('\n')
	if err != nil && line == "" {
		return "", false
	}
	return strings.TrimSpace(line), true
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, s stdio, args []string) int
}

func commands() []command {
	return []command{
		{"validate", "Check the configuration files", runValidate},
		{"plan", "Show what apply would change", runPlan},
		{"apply", "Change the deployments to match the files", runApply},
		{"status", "Show what runs, its health, revision and last backup", runStatus},
		{"backup", "Take a verified backup of the database now", runBackup},
		{"backups", "List the backups of each deployment", runBackups},
		{"restore", "Put a backup back and start the version it was taken at", runRestore},
		{"doctor", "Explain what is wrong with a deployment and how to recover", runDoctor},
		{"destroy", "Remove a deployment's containers; volumes and backups stay unless named", runDestroy},
		{"import", "Describe a container made by hand as a deployment file and adopt it", runImport},
		{"fmt", "Rewrite the files in canonical form (--check lists those that are not)", runFmt},
		{"version", "Print the version of gpustack-deploy", runVersion},
		{"help", "Show the help of a command", runHelp},
		{"completion", "Print a shell completion script for bash, zsh or fish", runCompletion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, environ: os.Environ(), tty: isTerminal(os.Stdout), errTTY: isTerminal(os.Stderr)}
	os.Exit(run(ctx, s, os.Args[1:]))
}

func run(ctx context.Context, s stdio, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage(s.out)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, s, args[1:])
		}
	}
	fmt.Fprintf(s.err, "gpustack-deploy: unknown command %q\n\n", args[0])
	usage(s.err)
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "gpustack-deploy: declarative, guarded deployments of GPUStack on Docker.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: gpustack-deploy <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'gpustack-deploy help <command>' (or '<command> --help') for the flags and examples of a command,")
	fmt.Fprintln(w, "and 'gpustack-deploy completion bash|zsh|fish' for a shell completion script.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 error or refused plan, 2 changes pending (plan --detailed-exitcode),")
	fmt.Fprintln(w, "            3 apply failed and was rolled back, 4 apply failed and could not roll back.")
}

func runVersion(_ context.Context, s stdio, args []string) int {
	fs := newFlagSet("version", "Print the version of gpustack-deploy.", "gpustack-deploy version", s)
	if code, done := parse(fs, args, s); done {
		return code
	}
	fmt.Fprintf(s.out, "gpustack-deploy %s\n", version)
	return exitOK
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// errorf prints an error in the one format every command uses.
func errorf(s stdio, format string, args ...any) int {
	fmt.Fprintf(s.err, "Error: "+format+"\n", args...)
	return exitError
}
