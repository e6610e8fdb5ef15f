package metadata

import (
	"bytes"
	"errors"
	"testing"
)

// checkParseErr: a parser either succeeds or returns a *FileError naming
// the file and a line that exists (0 when none is known).
func checkParseErr(t *testing.T, in []byte, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FileError", err, err)
	}
	if fe.File != "f" {
		t.Fatalf("error names %q", fe.File)
	}
	if lines := max(bytes.Count(in, []byte("\n")), bytes.Count(in, []byte("\r"))) + 1; fe.Line < 0 || fe.Line > lines+1 {
		t.Fatalf("line %d of %d: %v", fe.Line, lines, err)
	}
}

func FuzzParseSampleSheet(f *testing.F) {
	f.Add([]byte("[Header]\nFileFormatVersion,2\n[BCLConvert_Data]\nSample_ID,Index\nS1,ACGT\n"))
	f.Add([]byte("[Header],,\n[Reads]\n151\n[Data]\nSample_ID,index\n\"S,1\",A\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, err := ParseSampleSheet("f", in)
		checkParseErr(t, in, err)
	})
}

func FuzzParseRunInfo(f *testing.F) {
	f.Add([]byte(`<RunInfo><Run Id="r" Number="1"><Flowcell>f</Flowcell><Instrument>i</Instrument><Reads><Read Number="1" NumCycles="5" IsIndexedRead="N"/></Reads></Run></RunInfo>`))
	f.Add([]byte("<RunParameters>\n<A>1</A>\n<B><C>2</C></B></RunParameters>"))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, err := ParseRunInfo("f", in)
		checkParseErr(t, in, err)
		_, err = ParseRunParameters("f", in)
		checkParseErr(t, in, err)
	})
}

func FuzzParseSidecar(f *testing.F) {
	f.Add([]byte("a: 1\nb: [x, &y {k: v}, *y]\n"))
	f.Add([]byte(`{"a": [1, 2.5, null, true, "x"]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, err := ParseYAMLSidecar("f", in)
		checkParseErr(t, in, err)
		v, err := ParseJSONSidecar("f", in)
		checkParseErr(t, in, err)
		if err == nil {
			if _, err := toJSON(v); err != nil {
				t.Fatalf("a parsed sidecar is not JSON: %v", err)
			}
		}
	})
}
