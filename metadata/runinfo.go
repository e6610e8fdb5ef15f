package metadata

import (
	"strconv"
	"strings"
)

// RunInfo is what ferry reads from an Illumina RunInfo.xml (NovaSeq X,
// NovaSeq 6000, NextSeq 1000/2000, MiSeq shapes).
type RunInfo struct {
	RunID      string `json:"run_id"`
	Number     int    `json:"number"`
	Instrument string `json:"instrument"`
	Flowcell   string `json:"flowcell"`
	Date       string `json:"date,omitempty"` // as written: YYMMDD (older), ISO 8601 (newer), M/D/YYYY h:mm:ss AM (NovaSeq 6000)
	Reads      []Read `json:"reads"`
}

// Read is one <Read> of RunInfo.xml.
type Read struct {
	Number  int  `json:"number"`
	Cycles  int  `json:"cycles"`
	Indexed bool `json:"indexed"`
}

// ReadRunInfo reads and parses a RunInfo.xml file.
func ReadRunInfo(file string) (*RunInfo, error) {
	b, err := readBounded(file)
	if err != nil {
		return nil, err
	}
	return ParseRunInfo(file, b)
}

// ParseRunInfo parses RunInfo.xml content; file names the errors.
// Run Id, Number, Instrument, Flowcell and at least one Read are required;
// Date is optional (absent from the document when missing or empty).
func ParseRunInfo(file string, b []byte) (*RunInfo, error) {
	root, err := parseXML(file, stripBOM(b))
	if err != nil {
		return nil, err
	}
	if root.name != "RunInfo" {
		return nil, fileErr(file, root.line, "root element is <%s>, want <RunInfo>", root.name)
	}
	run := root.child("Run")
	if run == nil {
		return nil, fileErr(file, root.line, "<RunInfo> has no <Run> element")
	}
	ri := &RunInfo{RunID: run.attrs["Id"]}
	if ri.RunID == "" {
		return nil, fileErr(file, run.line, "<Run> has no Id attribute")
	}
	if ri.Number, err = atoi(run.attrs["Number"]); err != nil {
		return nil, fileErr(file, run.line, "<Run> Number=%q: want an integer", run.attrs["Number"])
	}
	for _, f := range []struct {
		name string
		dst  *string
		req  bool
	}{{"Flowcell", &ri.Flowcell, true}, {"Instrument", &ri.Instrument, true}, {"Date", &ri.Date, false}} {
		n := run.child(f.name)
		if n == nil || n.text == "" {
			if f.req {
				return nil, fileErr(file, run.line, "<Run> has no <%s>", f.name)
			}
			continue
		}
		*f.dst = n.text
	}
	reads := run.child("Reads")
	if reads == nil {
		return nil, fileErr(file, run.line, "<Run> has no <Reads>")
	}
	for _, r := range reads.children {
		if r.name != "Read" {
			return nil, fileErr(file, r.line, "unexpected <%s> in <Reads>", r.name)
		}
		var rd Read
		if rd.Number, err = atoi(r.attrs["Number"]); err != nil {
			return nil, fileErr(file, r.line, "<Read> Number=%q: want an integer", r.attrs["Number"])
		}
		if rd.Cycles, err = atoi(r.attrs["NumCycles"]); err != nil {
			return nil, fileErr(file, r.line, "<Read> NumCycles=%q: want an integer", r.attrs["NumCycles"])
		}
		switch strings.ToUpper(r.attrs["IsIndexedRead"]) {
		case "Y", "TRUE":
			rd.Indexed = true
		case "N", "FALSE":
		default:
			return nil, fileErr(file, r.line, "<Read> IsIndexedRead=%q: want Y or N", r.attrs["IsIndexedRead"])
		}
		ri.Reads = append(ri.Reads, rd)
	}
	if len(ri.Reads) == 0 {
		return nil, fileErr(file, reads.line, "<Reads> is empty")
	}
	return ri, nil
}

func atoi(s string) (int, error) {
	return strconv.Atoi(strings.TrimSpace(s))
}
