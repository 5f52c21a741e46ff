package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker/docker/pkg/jsonmessage"
)

// showPull writes the progress of an image pull, the engine's stream of
// JSON messages, to w. On a terminal it draws Docker's progress bars.
// Elsewhere (a log, a pipe, CI) it writes only the lines that say what
// happened, "<tag>: Pulling from <repo>", "Digest: …", "Status: …", and
// leaves out the per-layer lines (Waiting, Verifying Checksum, Download
// complete …), a handful for every layer. An error in the stream is
// returned either way.
func showPull(r io.Reader, w io.Writer, tty bool) error {
	if tty {
		return jsonmessage.DisplayJSONMessagesStream(r, w, 0, true, nil)
	}
	dec := json.NewDecoder(r)
	for {
		var jm jsonmessage.JSONMessage
		if err := dec.Decode(&jm); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read pull progress: %w", err)
		}
		if jm.Error != nil {
			return jm.Error
		}
		if jm.Status == "" || jm.Progress != nil {
			continue
		}
		if jm.ID == "" {
			fmt.Fprintln(w, jm.Status)
		} else if strings.HasPrefix(jm.Status, "Pulling from ") {
			fmt.Fprintf(w, "%s: %s\n", jm.ID, jm.Status)
		}
	}
}
