package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func runArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), stdio{in: strings.NewReader(""), out: &out, err: &errOut, environ: []string{"NO_COLOR=1"}}, args)
	return code, out.String(), errOut.String()
}

// flagNames lists "--name" and "-x" for every flag of a set.
func flagNames(fs *pflag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *pflag.Flag) {
		out = append(out, "--"+f.Name)
		if f.Shorthand != "" {
			out = append(out, "-"+f.Shorthand)
		}
	})
	return out
}

// Every command's help has its one-line summary, usage, an example of
// the command itself and every flag its flag set accepts: a flag added
// without showing up in the help fails here.
func TestEveryCommandHelp(t *testing.T) {
	sets := commandFlags(context.Background())
	if len(sets) != len(commands()) {
		t.Fatalf("flag sets of %d commands, want %d", len(sets), len(commands()))
	}
	if sets["plan"].Lookup("json") == nil || sets["validate"].Lookup("file") == nil {
		t.Fatal("commandFlags did not capture the real flag sets (plan --json, validate --file)")
	}
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			if c.summary == "" || strings.Contains(c.summary, "\n") {
				t.Fatalf("summary %q is not one line", c.summary)
			}
			code, out, errOut := runArgs(t, c.name, "--help")
			if code != exitOK || errOut != "" {
				t.Fatalf("%s --help: exit %d, stderr %q", c.name, code, errOut)
			}
			if first := strings.SplitN(out, "\n", 2)[0]; first != "gpustack-deploy "+c.name+": "+c.summary {
				t.Errorf("first line %q, want the summary", first)
			}
			if !strings.Contains(out, "\nUsage:\n  gpustack-deploy "+c.name) {
				t.Errorf("no usage line:\n%s", out)
			}
			_, examples, ok := strings.Cut(out, "\nExamples:\n")
			if !ok || !strings.HasPrefix(examples, "  gpustack-deploy "+c.name) {
				t.Errorf("no example of %s:\n%s", c.name, out)
			}
			_, flagsPart, ok := strings.Cut(out, "\nFlags:\n")
			if !ok {
				t.Fatalf("no Flags section:\n%s", out)
			}
			for _, name := range append(flagNames(sets[c.name]), "--help", "-h") {
				if !containsFlag(flagsPart, name) {
					t.Errorf("help of %s does not document %s:\n%s", c.name, name, flagsPart)
				}
			}
			code, viaHelp, _ := runArgs(t, "help", c.name)
			if code != exitOK || viaHelp != out {
				t.Errorf("help %s (exit %d) differs from %s --help:\n%s", c.name, code, c.name, viaHelp)
			}
		})
	}
}

// containsFlag reports whether text names flag as a whole word.
func containsFlag(text, flag string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], flag)
		if j < 0 {
			return false
		}
		end := i + j + len(flag)
		before := i + j
		okBefore := before == 0 || text[before-1] == ' ' || text[before-1] == ','
		okAfter := end == len(text) || strings.ContainsRune(" [=,\n", rune(text[end]))
		if okBefore && okAfter {
			return true
		}
		i = end
	}
}

func TestHelpCommand(t *testing.T) {
	code, out, _ := runArgs(t, "help")
	if code != exitOK {
		t.Errorf("help: exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, "\n  "+c.name+" ") {
			t.Errorf("help does not list %s:\n%s", c.name, out)
		}
	}
	code, _, errOut := runArgs(t, "help", "no-such-command")
	if code != exitError || !strings.Contains(errOut, `unknown command "no-such-command"`) {
		t.Errorf("help of an unknown command: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runArgs(t, "help", "plan", "apply"); code != exitError {
		t.Errorf("help with two commands: exit %d, want 1", code)
	}
}

// The describe hook hands the flag set over before a command does
// anything: commandFlags prints nothing and reads nothing.
func TestCommandFlagsRunsNothing(t *testing.T) {
	dir := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	commandFlags(context.Background())
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("commandFlags (from %s) wrote %v", wd, entries)
	}
}

func completion(t *testing.T, shell string) string {
	t.Helper()
	code, out, errOut := runArgs(t, "completion", shell)
	if code != exitOK || errOut != "" {
		t.Fatalf("completion %s: exit %d, stderr %q", shell, code, errOut)
	}
	return out
}

// syntaxCheck runs shell -n on script; the shell must exist for bash.
func syntaxCheck(t *testing.T, shell, script string) {
	t.Helper()
	bin, err := exec.LookPath(shell)
	if err != nil {
		if shell == "bash" || os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed to check the script: %v", shell, err)
		}
		t.Skipf("no %s to check the script", shell)
	}
	path := filepath.Join(t.TempDir(), "completion."+shell)
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("%s -n: %v\n%s", shell, err, out)
	}
}

func TestCompletionScripts(t *testing.T) {
	sets := commandFlags(context.Background())
	for _, shell := range shells {
		t.Run(shell, func(t *testing.T) {
			script := completion(t, shell)
			for _, c := range commands() {
				if !strings.Contains(script, c.name) {
					t.Errorf("the %s script does not name %s", shell, c.name)
				}
				for _, name := range flagNames(sets[c.name]) {
					bare := strings.TrimLeft(name, "-")
					if !strings.Contains(script, bare) {
						t.Errorf("the %s script does not name %s of %s", shell, name, c.name)
					}
				}
			}
			syntaxCheck(t, shell, script)
		})
	}
	if code, _, errOut := runArgs(t, "completion", "tcsh"); code != exitError || !strings.Contains(errOut, "tcsh") {
		t.Errorf("completion tcsh: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runArgs(t, "completion"); code != exitError {
		t.Errorf("completion without a shell: exit %d", code)
	}
}

// The bash script completes commands, each command's flags, .hcl files
// and directories after -f, and command names after help.
func TestBashCompletionCompletes(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	for _, name := range []string{"a.hcl", "b.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "completion.bash")
	if err := os.WriteFile(script, []byte(completion(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		words string
		want  []string
	}{
		{"gpustack-deploy pl", []string{"plan"}},
		{"gpustack-deploy b", []string{"backup", "backups"}},
		{"gpustack-deploy plan --j", []string{"--json"}},
		{"gpustack-deploy status --", nil}, // checked below: every flag
		{"gpustack-deploy plan -f ''", []string{"a.hcl", "deploy"}},
		{"gpustack-deploy validate --file ''", []string{"a.hcl", "deploy"}},
		{"gpustack-deploy plan --state-dir ''", []string{"deploy"}},
		{"gpustack-deploy help res", []string{"restore"}},
		{"gpustack-deploy completion ''", []string{"bash", "fish", "zsh"}},
		{"gpustack-deploy plan --var ''", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.words, func(t *testing.T) {
			cmd := exec.Command("bash", "-c", `source "$1"; eval "COMP_WORDS=($2)"; COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _gpustack_deploy; printf '%s\n' "${COMPREPLY[@]}" | sort`, "bash", script, tt.words)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := strings.Fields(string(out))
			if tt.want == nil {
				for _, name := range flagNames(commandFlags(context.Background())["status"]) {
					if strings.HasPrefix(name, "--") && !slices.Contains(got, name) {
						t.Errorf("status -- does not offer %s: %q", name, got)
					}
				}
				return
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
