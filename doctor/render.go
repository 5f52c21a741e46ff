package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// width is where prose is wrapped; commands and evidence are never wrapped,
// so that they can be copied.
const width = 100

// Text writes reports for a person: what is wrong, with evidence, then the
// ways back, best first, each with its commands.
func Text(w io.Writer, reports ...Report) {
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		text(w, r)
	}
}

func text(w io.Writer, r Report) {
	switch {
	case r.Deployment != "":
		fmt.Fprintf(w, "Deployment %q on host %s\n", r.Deployment, dash(r.Host))
	case r.Container != "":
		fmt.Fprintf(w, "Container %q\n", r.Container)
	}
	wrap(w, r.Summary, "  ", "  ")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Diagnosis")
	if r.Healthy {
		fmt.Fprintln(w, "  No problems found.")
	}
	for i, f := range r.Findings {
		head := fmt.Sprintf("  %d. [%s] ", i+1, f.Severity)
		wrap(w, f.Summary, head, strings.Repeat(" ", len(head)))
		pad := strings.Repeat(" ", len(fmt.Sprintf("  %d. ", i+1)))
		wrap(w, f.Detail, pad, pad)
		if f.Evidence != "" {
			fmt.Fprintf(w, "%sevidence: %s\n", pad, f.Evidence)
		}
	}
	fmt.Fprintln(w)
	if len(r.Options) == 0 {
		fmt.Fprintln(w, "Nothing to do.")
	} else {
		fmt.Fprintln(w, "Ways back, best first")
		for _, o := range r.Options {
			head := fmt.Sprintf("  %d. ", o.Rank)
			pad := strings.Repeat(" ", len(head))
			wrap(w, o.Title, head, pad)
			wrap(w, "Why: "+o.Why, pad, pad+"     ")
			wrap(w, "Risk: "+o.Risk, pad, pad+"      ")
			for _, c := range o.Commands {
				fmt.Fprintf(w, "%s    %s\n", pad, c)
			}
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Notes")
		for _, n := range r.Notes {
			first, rest, _ := strings.Cut(n, "\n")
			wrap(w, first, "  - ", "    ")
			for _, line := range strings.Split(rest, "\n") {
				switch {
				case strings.HasPrefix(line, "  "):
					// Indented lines are code: copied as they are.
					fmt.Fprintf(w, "    %s\n", line)
				case line != "":
					wrap(w, line, "    ", "    ")
				}
			}
		}
	}
}

// wrap writes s as words filling lines up to width; the first line starts
// with first, the others with rest.
func wrap(w io.Writer, s, first, rest string) {
	line := first
	empty := true
	for _, word := range strings.Fields(s) {
		if !empty && len(line)+1+len(word) > width {
			fmt.Fprintln(w, line)
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += word
		empty = false
	}
	fmt.Fprintln(w, line)
}

// JSON writes the reports as a JSON array, whatever their number, so that
// scripts read one shape.
func JSON(w io.Writer, reports ...Report) error {
	if reports == nil {
		reports = []Report{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(reports); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}
