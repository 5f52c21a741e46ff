package engine

import (
	"bytes"
	"strings"
	"testing"
)

// pullStream is what the engine sends for a pull of an image with two
// layers, one already present.
const pullStream = `{"status":"Pulling from gpustack/gpustack","id":"v0.6.0-cpu"}
{"status":"Already exists","progressDetail":{},"id":"1f3e46996e29"}
{"status":"Pulling fs layer","progressDetail":{},"id":"9a0b0ce99936"}
{"status":"Waiting","progressDetail":{},"id":"9a0b0ce99936"}
{"status":"Downloading","progressDetail":{"current":1024,"total":4096},"progress":"[=====>    ]  1.024kB/4.096kB","id":"9a0b0ce99936"}
{"status":"Verifying Checksum","progressDetail":{},"id":"9a0b0ce99936"}
{"status":"Download complete","progressDetail":{},"id":"9a0b0ce99936"}
{"status":"Extracting","progressDetail":{"current":4096,"total":4096},"progress":"[==========>]  4.096kB/4.096kB","id":"9a0b0ce99936"}
{"status":"Pull complete","progressDetail":{},"id":"9a0b0ce99936"}
{"status":"Digest: sha256:0123456789abcdef"}
{"status":"Status: Downloaded newer image for gpustack/gpustack:v0.6.0-cpu"}
`

func TestShowPullQuietWithoutTerminal(t *testing.T) {
	var out bytes.Buffer
	if err := showPull(strings.NewReader(pullStream), &out, false); err != nil {
		t.Fatal(err)
	}
	want := "v0.6.0-cpu: Pulling from gpustack/gpustack\nDigest: sha256:0123456789abcdef\nStatus: Downloaded newer image for gpustack/gpustack:v0.6.0-cpu\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestShowPullTerminal(t *testing.T) {
	var out bytes.Buffer
	if err := showPull(strings.NewReader(pullStream), &out, true); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Pulling from gpustack/gpustack", "9a0b0ce99936: Pull complete", "Digest: sha256:0123456789abcdef", "\x1b["} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("terminal output lacks %q:\n%q", s, out.String())
		}
	}
}

func TestShowPullErrors(t *testing.T) {
	for name, stream := range map[string]string{
		"error in the stream": `{"status":"Pulling from gpustack/gpustack","id":"v9"}
{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}
`,
		"broken stream": `{"status":"Pulling from`,
	} {
		for _, tty := range []bool{false, true} {
			err := showPull(strings.NewReader(stream), &bytes.Buffer{}, tty)
			if err == nil {
				t.Errorf("%s (tty %v): no error", name, tty)
			}
			if name == "error in the stream" && err != nil && !strings.Contains(err.Error(), "manifest unknown") {
				t.Errorf("%s (tty %v): %v", name, tty, err)
			}
		}
	}
}
