package dataset

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf16"
)

// The two shapes of RunCompletionStatus.xml (README, "Runs and datasets").
const (
	novaseqXOK = `<?xml version="1.0" encoding="utf-8"?>
<RunCompletionStatus xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <RunStatus>RunCompleted</RunStatus>
</RunCompletionStatus>`
	novaseqXErr = `<?xml version="1.0" encoding="utf-8"?>
<RunCompletionStatus>
  <RunStatus>RunErrored</RunStatus>
  <RunError>
    <Type>Illumina.Instrument.Recipe.Runtime.Exceptions.RecipeExecutionFailedException</Type>
    <Message>I/O data integrity check failed</Message>
  </RunError>
</RunCompletionStatus>`
	nextseqOK = `<?xml version="1.0"?>
<RunCompletionStatus>
  <CompletionStatus>CompletedAsPlanned</CompletionStatus>
  <ErrorDescription>None</ErrorDescription>
</RunCompletionStatus>`
	nextseqEarly = `<?xml version="1.0"?>
<RunCompletionStatus>
  <CompletionStatus>UserEndedEarly</CompletionStatus>
  <ErrorDescription>Thread was aborted</ErrorDescription>
</RunCompletionStatus>`
)

func TestParseRunCompletionStatus(t *testing.T) {
	cases := []struct {
		name, xml string
		outcome   Outcome
		reason    string
		err       string
	}{
		{"NovaSeq X success", novaseqXOK, Completed, "", ""},
		{"NovaSeq X error", novaseqXErr, FailedRun, "RunErrored: Illumina.Instrument.Recipe.Runtime.Exceptions.RecipeExecutionFailedException: I/O data integrity check failed", ""},
		{"NextSeq success", nextseqOK, Completed, "", ""},
		{"NextSeq ended early", nextseqEarly, FailedRun, "UserEndedEarly: Thread was aborted", ""},
		{"unknown status is not success", `<RunCompletionStatus><RunStatus>RunPaused</RunStatus></RunCompletionStatus>`, FailedRun, "RunPaused", ""},
		{"half written", `<?xml version="1.0"?><RunCompletionStatus><RunSta`, 0, "", "not readable XML"},
		{"empty", ``, 0, "", "not readable XML"},
		{"other document", `<AnalysisJobInfo><Error>x</Error></AnalysisJobInfo>`, 0, "", "not <RunCompletionStatus>"},
		{"no status", `<RunCompletionStatus><Foo/></RunCompletionStatus>`, 0, "", "no <RunStatus>"},
		{"BOM", "\xEF\xBB\xBF" + nextseqOK, Completed, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := ParseRunCompletionStatus([]byte(c.xml))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || st.Outcome != c.outcome || st.Reason != c.reason {
				t.Fatalf("got %+v, %v; want %v %q", st, err, c.outcome, c.reason)
			}
		})
	}
	// UTF-16 with a byte-order mark and a declaration that says so.
	doc := strings.Replace(nextseqEarly, `<?xml version="1.0"?>`, `<?xml version="1.0" encoding="utf-16"?>`, 1)
	u := utf16.Encode([]rune(doc))
	b := []byte{0xFF, 0xFE}
	for _, r := range u {
		b = append(b, byte(r), byte(r>>8))
	}
	st, err := ParseRunCompletionStatus(b)
	if err != nil || st.Reason != "UserEndedEarly: Thread was aborted" {
		t.Fatalf("UTF-16: %+v, %v", st, err)
	}
}

func TestIlluminaProfile(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	cs := must(t, "illumina")
	run := fstest.MapFS{
		"RunInfo.xml": {Data: []byte("<RunInfo/>")},
		"Data/Intensities/BaseCalls/L001/C1.1/L001_1.cbcl": {Data: []byte("x")},
	}
	if v := cs.Evaluate(run, t0, t0.Add(48*time.Hour)); v.Complete {
		t.Fatalf("a run without any marker completed: %+v", v)
	}

	// RTAComplete alone: copying may still go on, so a quiet period follows.
	run[RTAComplete] = &fstest.MapFile{}
	v := cs.Evaluate(run, t0, t0.Add(time.Minute))
	if v.Complete || !v.Recheck.Equal(t0.Add(IlluminaQuiet)) {
		t.Fatalf("RTAComplete just written: %+v", v)
	}
	if v := cs.Evaluate(run, t0, t0.Add(IlluminaQuiet)); !v.Complete || v.Signal != "RTAComplete.txt + 15m0s quiet" || v.Outcome != Completed {
		t.Fatalf("RTAComplete then quiet: %+v", v)
	}

	// CopyComplete: at once.
	run[CopyComplete] = &fstest.MapFile{}
	if v := cs.Evaluate(run, t0, t0); !v.Complete || v.Signal != CopyComplete {
		t.Fatalf("CopyComplete: %+v", v)
	}

	// A failed run is complete too, and says why.
	run[RunCompletionStatus] = &fstest.MapFile{Data: []byte(novaseqXErr)}
	v = cs.Evaluate(run, t0, t0)
	if !v.Complete || v.Outcome != FailedRun || !strings.Contains(v.Reason, "I/O data integrity check failed") {
		t.Fatalf("failed run: %+v", v)
	}
	// …even when another condition is the one that completes it.
	mixed := must(t, "marker:.done", "illumina")
	delete(run, CopyComplete)
	delete(run, RTAComplete)
	run[".done"] = &fstest.MapFile{}
	v = mixed.Evaluate(run, t0, t0)
	if !v.Complete || v.Signal != "marker:.done" || v.Outcome != FailedRun {
		t.Fatalf("marker with a failed run's status: %+v", v)
	}

	// A failed run that writes no CopyComplete closes after the quiet period.
	failed := fstest.MapFS{RunCompletionStatus: {Data: []byte(nextseqEarly)}}
	if v := cs.Evaluate(failed, t0, t0.Add(IlluminaQuiet-time.Second)); v.Complete || v.Outcome != FailedRun {
		t.Fatalf("failed run, before the quiet period: %+v", v)
	}
	if v := cs.Evaluate(failed, t0, t0.Add(IlluminaQuiet)); !v.Complete || v.Outcome != FailedRun || v.Reason != "UserEndedEarly: Thread was aborted" {
		t.Fatalf("failed run, after the quiet period: %+v", v)
	}

	// A status file being written is noted, not taken as success or failure.
	partial := fstest.MapFS{CopyComplete: {}, RunCompletionStatus: {Data: []byte("<RunComp")}}
	v = cs.Evaluate(partial, t0, t0)
	if !v.Complete || v.Outcome != Completed || len(v.Notes) != 1 || !strings.Contains(v.Notes[0], RunCompletionStatus) {
		t.Fatalf("partial status file: %+v", v)
	}
	// The NextSeq 500/550 writes RTAComplete.xml.
	ns500 := fstest.MapFS{RTACompleteXML: {}}
	if v := cs.Evaluate(ns500, t0, t0.Add(IlluminaQuiet)); !v.Complete || !strings.HasPrefix(v.Signal, RTACompleteXML) {
		t.Fatalf("RTAComplete.xml: %+v", v)
	}
	// A folder named like a marker is not one.
	if v := cs.Evaluate(fstest.MapFS{"CopyComplete.txt/x": {}}, t0, t0); v.Complete {
		t.Fatalf("folder named CopyComplete.txt: %+v", v)
	}
}
