package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// mergeable are the sections whose parts of the report are marked with
// HTML comments (<!-- bench:SECTION:PLACE --> … <!-- /bench:SECTION:PLACE -->),
// so that `-only SECTION -update` can replace them in an existing file and
// keep everything else, figures of the other sections included.
var mergeable = []string{"split", "v2backup"}

// Places of a section's parts in the report, in file order.
const (
	placeNote      = "note"      // which run the section's figures come from (merged runs only)
	placeMethod    = "method"    // its bullet under ## Method
	placeResults   = "results"   // its table under ## Results
	placeSummary   = "summary"   // its bullet at the top of ## Where the time goes
	placeBreakdown = "breakdown" // its tables at the end of ## Where the time goes
)

// checkUpdate validates -update: it merges some sections into -out.
func checkUpdate(only string, sections map[string]bool, out string) error {
	if strings.TrimSpace(only) == "" {
		return fmt.Errorf("-update merges the sections given with -only (%s) into the existing report", strings.Join(mergeable, ", "))
	}
	if out == "" {
		return errors.New("-update needs -out (the report to merge into)")
	}
	for _, s := range allSections {
		if sections[s] && !slices.Contains(mergeable, s) {
			return fmt.Errorf("-update: section %s cannot be merged into an existing report (only %s can); run the full bench: go run ./bench", s, strings.Join(mergeable, ", "))
		}
	}
	return nil
}

func markers(section, place string) (begin, end string) {
	return "<!-- bench:" + section + ":" + place + " -->", "<!-- /bench:" + section + ":" + place + " -->"
}

// marked wraps body (whole lines) in the section's markers; "" stays "".
func marked(section, place, body string) string {
	if body == "" {
		return ""
	}
	begin, end := markers(section, place)
	return begin + "\n" + body + end + "\n"
}

// part is one marked part of a section.
type part struct{ place, body string }

// mergeReport replaces the marked parts of section in doc with parts (a
// part whose body is empty removes the old one), inserting the parts that
// are not there yet at their place; it adds the section's Reproduce line
// and its name to the list of sections.
func mergeReport(doc, section string, parts []part, reproduce string) (string, error) {
	for _, pt := range parts {
		begin, end := markers(section, pt.place)
		block := marked(section, pt.place, pt.body)
		if i := strings.Index(doc, begin+"\n"); i >= 0 {
			j := strings.Index(doc[i:], end+"\n")
			if j < 0 {
				return "", fmt.Errorf("%s without %s", begin, end)
			}
			doc = doc[:i] + block + doc[i+j+len(end)+1:]
			continue
		}
		if block == "" {
			continue
		}
		at, err := anchor(doc, pt.place)
		if err != nil {
			return "", err
		}
		if pt.place != placeSummary {
			block += "\n"
		}
		doc = doc[:at] + block + doc[at:]
	}
	if reproduce != "" && !strings.Contains(doc, reproduce+"\n") {
		i := strings.Index(doc, "\ngo test -run '^$'")
		if i < 0 {
			return "", errors.New("no `go test -run '^$' …` line in the Reproduce block to put the section's command before")
		}
		doc = doc[:i+1] + reproduce + "\n" + doc[i+1:]
	}
	m := sectionsLine.FindStringSubmatchIndex(doc)
	if m == nil {
		return "", errors.New("no \"Sections: … (`-only`)\" line in the Reproduce part")
	}
	listed := strings.Split(doc[m[2]:m[3]], ", ")
	if !slices.Contains(listed, section) {
		var out []string
		for _, s := range allSections {
			if s == section || slices.Contains(listed, s) {
				out = append(out, s)
			}
		}
		doc = doc[:m[2]] + strings.Join(out, ", ") + doc[m[3]:]
	}
	return doc, nil
}

var sectionsLine = regexp.MustCompile("Sections: ([a-z][a-z0-9]*(?:, [a-z][a-z0-9]*)*) \\(`-only`\\)")

// anchor is where a part goes in a report that does not hold it yet.
func anchor(doc, place string) (int, error) {
	line := func(heading string) (int, error) {
		if strings.HasPrefix(doc, heading+"\n") {
			return 0, nil
		}
		i := strings.Index(doc, "\n"+heading+"\n")
		if i < 0 {
			return 0, fmt.Errorf("no line %q in the report", heading)
		}
		return i + 1, nil
	}
	switch place {
	case placeNote:
		return line("## Machine")
	case placeMethod:
		return line("## Results")
	case placeResults:
		return line("## Where the time goes")
	case placeSummary:
		// After the last bullet of the list that opens the part.
		h, err := line("## Where the time goes")
		if err != nil {
			return 0, err
		}
		start := h + len("## Where the time goes\n\n")
		if start > len(doc) {
			return 0, errors.New("the report ends after \"## Where the time goes\"")
		}
		i := strings.Index(doc[start:], "\n\n")
		if i < 0 {
			return 0, errors.New("no blank line after the bullets of \"## Where the time goes\"")
		}
		return start + i + 1, nil
	case placeBreakdown:
		if i, err := line("## Go benchmarks of the pure parts"); err == nil {
			return i, nil
		}
		return line("## Reproduce")
	}
	return 0, fmt.Errorf("unknown place %q", place)
}

// mergeNote says which run the merged section's figures come from, and
// where that run's machine differs from the report's table.
func mergeNote(b *bench, r *results, doc, section, title string) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("The %s figures (between `<!-- bench:%s:… -->` markers in the source) come from a later run, not the one above: `%s` on %s",
		title, section, strings.TrimSpace("go run ./bench "+strings.Join(b.o.args, " ")), r.started.UTC().Format("2006-01-02 15:04 MST"))
	p("(%s of measuring), gpustack-deploy %s, load average %s at the start, %s at the end.",
		r.finished.Sub(r.started).Round(time.Second), b.facts.commit, r.loadStart, r.loadEnd)
	var differ []string
	for _, row := range machineRows(b.facts) {
		if !strings.Contains(doc, row) {
			differ = append(differ, strings.Trim(strings.ReplaceAll(row, " | ", ": "), "| "))
		}
	}
	if len(differ) == 0 {
		p("Its machine is the one in the table below (CPUs, memory, kernel, Docker, disk, Go as listed).")
	} else {
		p("Its machine differs from the table below in: %s.", strings.Join(differ, "; "))
	}
	return w.String()
}
