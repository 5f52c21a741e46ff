package executor

import (
	"reflect"
	"strings"
	"testing"
)

func TestDumpTables(t *testing.T) {
	list := `;
; Archive created at 2026-11-28 10:00:00 UTC
;     dbname: gpustack
215; 1259 16390 TABLE public models gpustack
3390; 0 16390 TABLE DATA public models gpustack
3391; 0 16400 TABLE DATA public alembic_version gpustack
;3392; 0 16410 TABLE DATA public commented_out gpustack
3393; 0 0 SEQUENCE SET public models_id_seq gpustack
`
	if got, want := dumpTables(list), []string{"models", "alembic_version"}; !reflect.DeepEqual(got, want) {
		t.Errorf("dumpTables = %v, want %v", got, want)
	}
	if got := dumpTables("; nothing\n"); len(got) != 0 {
		t.Errorf("an empty list gives %v", got)
	}
}

// TestExternalScriptsTakeTheURLFromTheEnvironment: the URL holds the
// password; it must never be an argument (visible in ps and in the
// engine's container config) or be echoed by the scripts.
func TestExternalScriptsTakeTheURLFromTheEnvironment(t *testing.T) {
	for name, script := range map[string]string{"dump": externalDumpScript, "restore": externalRestoreScript} {
		if !strings.Contains(script, `"$`+externalURLEnv+`"`) {
			t.Errorf("%s script does not read $%s", name, externalURLEnv)
		}
		if strings.Contains(script, "set -x") || strings.Contains(script, "echo") {
			t.Errorf("%s script may print the URL:\n%s", name, script)
		}
	}
	if !strings.Contains(externalRestoreScript, "--single-transaction") || !strings.Contains(externalRestoreScript, "ON_ERROR_STOP=1") {
		t.Error("the restore must stop at the first error and load in one transaction")
	}
}
