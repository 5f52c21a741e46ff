package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Diagnostics are coloured only when standard error is a terminal and
// neither NO_COLOR nor --no-color says otherwise.
func TestDiagnosticColour(t *testing.T) {
	parser := hclparse.NewParser()
	src := []byte("gpustack \"a\" {\n  version = 1\n}\n")
	if _, diags := parser.ParseHCL(src, "a.hcl"); diags.HasErrors() {
		t.Fatal(diags)
	}
	diags := hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Bad version", Detail: "detail",
		Subject: &hcl.Range{Filename: "a.hcl", Start: hcl.Pos{Line: 2, Column: 3, Byte: 17}, End: hcl.Pos{Line: 2, Column: 10, Byte: 24}}}}
	tests := []struct {
		name       string
		errTTY     bool
		outTTY     bool
		environ    []string
		noColor    bool
		wantEscape bool
	}{
		{"stderr a terminal", true, false, nil, false, true},
		{"NO_COLOR", true, true, []string{"NO_COLOR=1"}, false, false},
		{"NO_COLOR empty counts as unset", true, true, []string{"NO_COLOR="}, false, true},
		{"--no-color", true, true, nil, true, false},
		{"only stdout a terminal", false, true, nil, false, false},
		{"no terminal", false, false, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errOut bytes.Buffer
			c := common{noColor: tt.noColor}
			c.printDiags(stdio{err: &errOut, out: &bytes.Buffer{}, tty: tt.outTTY, errTTY: tt.errTTY, environ: tt.environ}, parser, diags)
			if !strings.Contains(errOut.String(), "Bad version") {
				t.Fatalf("no diagnostic printed: %q", errOut.String())
			}
			if got := strings.Contains(errOut.String(), "\x1b["); got != tt.wantEscape {
				t.Errorf("escape sequences = %v, want %v: %q", got, tt.wantEscape, errOut.String())
			}
		})
	}
}
