package dataset

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
	"unicode/utf16"
)

// What Illumina instruments write into a run folder, and what ferry makes
// of it (README, "Runs and datasets", gives the sources):
//
//   - CopyComplete.txt: written by the control software once every file of
//     the run has been copied to the output folder (NovaSeq X, NovaSeq 6000,
//     NextSeq 1000/2000, MiSeq i100). The run is complete at once.
//   - RTAComplete.txt (RTAComplete.xml on the NextSeq 500/550): written by
//     Real-Time Analysis after the last cycle's base calls. Instruments that
//     write no CopyComplete still copy InterOp files and logs after it, so it
//     completes the run only after IlluminaQuiet with nothing new or changed.
//   - RunCompletionStatus.xml: how the run ended. NovaSeq X writes
//     <RunStatus>RunCompleted</RunStatus>, or RunErrored with <RunError>
//     <Type> and <Message>; the NextSeq 1000/2000 writes
//     <CompletionStatus>CompletedAsPlanned</CompletionStatus> or
//     UserEndedEarly, ExceptionEndedEarly… with <ErrorDescription>. A run
//     that did not end successfully still uploads; its dataset ends
//     failed_run with the instrument's reason. Without CopyComplete.txt it
//     also completes after the quiet period (a failed run may never write
//     one).
const (
	CopyComplete        = "CopyComplete.txt"
	RTAComplete         = "RTAComplete.txt"
	RTACompleteXML      = "RTAComplete.xml"
	RunCompletionStatus = "RunCompletionStatus.xml"
)

// IlluminaQuiet is how long a run folder with RTAComplete (or a
// RunCompletionStatus) but no CopyComplete must stay unchanged before it is
// complete: long enough for the control software's copy of InterOp files
// and logs, which follows RTAComplete within minutes, to show up as changes.
const IlluminaQuiet = 15 * time.Minute

// maxStatusFile bounds what is read of RunCompletionStatus.xml (a few
// hundred bytes in practice).
const maxStatusFile = 1 << 20

func illumina(fsys fs.FS, lastChange, now time.Time) Verdict {
	var v Verdict
	if present(fsys, RunCompletionStatus) {
		st, err := readRunCompletionStatus(fsys)
		if err != nil {
			v.Notes = append(v.Notes, err.Error())
		} else {
			v.Outcome, v.Reason = st.Outcome, st.Reason
		}
	}
	if present(fsys, CopyComplete) {
		v.Complete, v.Signal = true, CopyComplete
		return v
	}
	for _, m := range []string{RTAComplete, RTACompleteXML, RunCompletionStatus} {
		if !present(fsys, m) {
			continue
		}
		q := quiet(IlluminaQuiet, fmt.Sprintf("%s + %v quiet", m, IlluminaQuiet), lastChange, now)
		v.Complete, v.Signal, v.Recheck = q.Complete, q.Signal, q.Recheck
		return v
	}
	return v
}

func present(fsys fs.FS, name string) bool {
	fi, err := fs.Stat(fsys, name)
	return err == nil && fi.Mode().IsRegular()
}

// RunStatus is what RunCompletionStatus.xml says.
type RunStatus struct {
	Outcome Outcome
	Status  string // the instrument's word: RunCompleted, CompletedAsPlanned, RunErrored, UserEndedEarly…
	Reason  string // for a failed run: the instrument's error, else ""
}

func readRunCompletionStatus(fsys fs.FS) (RunStatus, error) {
	f, err := fsys.Open(RunCompletionStatus)
	if err != nil {
		return RunStatus{}, fmt.Errorf("%s: %v", RunCompletionStatus, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStatusFile+1))
	if err != nil {
		return RunStatus{}, fmt.Errorf("%s: %v", RunCompletionStatus, err)
	}
	if len(data) > maxStatusFile {
		return RunStatus{}, fmt.Errorf("%s: larger than %d bytes, not read", RunCompletionStatus, maxStatusFile)
	}
	st, err := ParseRunCompletionStatus(data)
	if err != nil {
		return RunStatus{}, fmt.Errorf("%s: %v", RunCompletionStatus, err)
	}
	return st, nil
}

// ParseRunCompletionStatus reads RunCompletionStatus.xml in either of the
// shapes Illumina instruments write (see the package's notes). A status it
// does not know as success is a failed run, with the status as the reason:
// ferry never reports an unknown ending as a success.
func ParseRunCompletionStatus(data []byte) (RunStatus, error) {
	var doc struct {
		XMLName          xml.Name
		RunStatus        string `xml:"RunStatus"`
		CompletionStatus string `xml:"CompletionStatus"`
		ErrorDescription string `xml:"ErrorDescription"`
		RunError         struct {
			Type    string `xml:"Type"`
			Message string `xml:"Message"`
		} `xml:"RunError"`
	}
	dec := xml.NewDecoder(bytes.NewReader(toUTF8(data)))
	// toUTF8 has already decoded UTF-16; a declaration naming it, or any
	// other single-byte charset .NET writes for this ASCII file, is read as is.
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	if err := dec.Decode(&doc); err != nil {
		return RunStatus{}, fmt.Errorf("not readable XML (still being written?): %v", err)
	}
	if doc.XMLName.Local != "RunCompletionStatus" {
		return RunStatus{}, fmt.Errorf("root element is <%s>, not <RunCompletionStatus>", doc.XMLName.Local)
	}
	clean := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	status := clean(doc.RunStatus)
	if status == "" {
		status = clean(doc.CompletionStatus)
	}
	switch status {
	case "":
		return RunStatus{}, fmt.Errorf("no <RunStatus> or <CompletionStatus>")
	case "RunCompleted", "CompletedAsPlanned":
		return RunStatus{Outcome: Completed, Status: status}, nil
	}
	var why []string
	for _, s := range []string{clean(doc.RunError.Type), clean(doc.RunError.Message), clean(doc.ErrorDescription)} {
		if s != "" && !strings.EqualFold(s, "none") {
			why = append(why, s)
		}
	}
	reason := status
	if len(why) > 0 {
		reason += ": " + strings.Join(why, ": ")
	}
	return RunStatus{Outcome: FailedRun, Status: status, Reason: reason}, nil
}

// toUTF8 turns a UTF-16 document (with its byte-order mark, as Windows
// tools may write) into UTF-8 and drops a UTF-8 byte-order mark.
func toUTF8(b []byte) []byte {
	var order binary.ByteOrder
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return b[3:]
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		order = binary.LittleEndian
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		order = binary.BigEndian
	default:
		return b
	}
	b = b[2:]
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = order.Uint16(b[2*i:])
	}
	return []byte(string(utf16.Decode(u)))
}
