package metadata

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// wantFileErr asserts err is a *FileError at file:line whose message
// contains msg.
func wantFileErr(t *testing.T, err error, file string, line int, msg string) {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T): want a *FileError", err, err)
	}
	if fe.File != file || fe.Line != line {
		t.Errorf("error at %s:%d, want %s:%d (%v)", fe.File, fe.Line, file, line, err)
	}
	if !strings.Contains(fe.Msg, msg) {
		t.Errorf("message %q, want it to contain %q", fe.Msg, msg)
	}
	if line > 0 && !strings.HasPrefix(err.Error(), file+":"+itoa(line)+": ") {
		t.Errorf("Error() = %q, want it to start with FILE:LINE", err.Error())
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestParseRunInfo(t *testing.T) {
	const novaseqX = `<?xml version="1.0" encoding="utf-8"?>
<RunInfo Version="6">
	<Run Id="20261202_LH00001_0042_A22XYZLT3" Number="42">
		<Flowcell>22XYZLT3</Flowcell>
		<Instrument>LH00001</Instrument>
		<Date>2026-12-02T09:41:07Z</Date>
		<Reads>
			<Read Number="1" NumCycles="151" IsIndexedRead="N" IsReverseComplement="N"/>
			<Read Number="2" NumCycles="10" IsIndexedRead="Y" IsReverseComplement="N"/>
		</Reads>
	</Run>
</RunInfo>`
	// MiSeq: YYMMDD date, a BOM, and a CRLF file.
	const miseq = "\ufeff<?xml version=\"1.0\"?>\r\n<RunInfo xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" Version=\"2\">\r\n" +
		"  <Run Id=\"150424_M00123_0042_000000000-ABCDE\" Number=\"42\">\r\n    <Flowcell>000000000-ABCDE</Flowcell>\r\n" +
		"    <Instrument>M00123</Instrument>\r\n    <Date>150424</Date>\r\n    <Reads>\r\n" +
		"      <Read NumCycles=\"251\" Number=\"1\" IsIndexedRead=\"N\" />\r\n      <Read NumCycles=\"8\" Number=\"2\" IsIndexedRead=\"Y\" />\r\n" +
		"    </Reads>\r\n  </Run>\r\n</RunInfo>\r\n"
	good := []struct {
		name, in string
		want     RunInfo
	}{
		{"novaseq x", novaseqX, RunInfo{RunID: "20261202_LH00001_0042_A22XYZLT3", Number: 42, Instrument: "LH00001", Flowcell: "22XYZLT3",
			Date: "2026-12-02T09:41:07Z", Reads: []Read{{1, 151, false}, {2, 10, true}}}},
		{"miseq", miseq, RunInfo{RunID: "150424_M00123_0042_000000000-ABCDE", Number: 42, Instrument: "M00123", Flowcell: "000000000-ABCDE",
			Date: "150424", Reads: []Read{{1, 251, false}, {2, 8, true}}}},
		{"no date", strings.Replace(novaseqX, "<Date>2026-12-02T09:41:07Z</Date>", "", 1), RunInfo{RunID: "20261202_LH00001_0042_A22XYZLT3", Number: 42,
			Instrument: "LH00001", Flowcell: "22XYZLT3", Reads: []Read{{1, 151, false}, {2, 10, true}}}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRunInfo("RunInfo.xml", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
	bad := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"malformed", strings.Replace(novaseqX, "</Flowcell>", "</Flowcel>", 1), 4, "malformed XML"},
		{"truncated", novaseqX[:strings.Index(novaseqX, "</Run>")], 11, "malformed XML"},
		{"wrong root", `<RunParameters/>`, 1, "root element is <RunParameters>"},
		{"no run", "<RunInfo>\n</RunInfo>", 1, "no <Run> element"},
		{"no id", strings.Replace(novaseqX, `Id="20261202_LH00001_0042_A22XYZLT3" `, "", 1), 3, "no Id attribute"},
		{"bad number", strings.Replace(novaseqX, `Number="42"`, `Number="x"`, 1), 3, `Number="x": want an integer`},
		{"no flowcell", strings.Replace(novaseqX, "<Flowcell>22XYZLT3</Flowcell>", "", 1), 3, "no <Flowcell>"},
		{"no instrument", strings.Replace(novaseqX, "<Instrument>LH00001</Instrument>", "<Instrument></Instrument>", 1), 3, "no <Instrument>"},
		{"bad cycles", strings.Replace(novaseqX, `NumCycles="10"`, `NumCycles="ten"`, 1), 9, `NumCycles="ten"`},
		{"bad indexed", strings.Replace(novaseqX, `IsIndexedRead="Y"`, `IsIndexedRead="maybe"`, 1), 9, "want Y or N"},
		{"stray element", strings.Replace(novaseqX, "</Reads>", "<Lane/></Reads>", 1), 10, "unexpected <Lane>"},
		{"no reads", strings.Replace(strings.Replace(novaseqX, "<Reads>", "<Read2>", 1), "</Reads>", "</Read2>", 1), 3, "no <Reads>"},
		{"empty reads", "<RunInfo><Run Id=\"r\" Number=\"1\"><Flowcell>f</Flowcell><Instrument>i</Instrument>\n<Reads></Reads></Run></RunInfo>", 2, "<Reads> is empty"},
		{"two roots", "<RunInfo/>\n<RunInfo/>", 2, "second root element"},
		{"empty", "", 1, "no XML root element"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRunInfo("run/RunInfo.xml", []byte(tc.in))
			wantFileErr(t, err, "run/RunInfo.xml", tc.line, tc.msg)
		})
	}
}

func TestParseRunParameters(t *testing.T) {
	// MiSeq shape: nested setup, RTAVersion, Chemistry, repeated leaves.
	const miseq = `<?xml version="1.0"?>
<RunParameters xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <EnableCloud>false</EnableCloud>
  <Setup>
    <SupportMultipleSurfacesInUI>true</SupportMultipleSurfacesInUI>
    <ApplicationVersion>2.6.2.1</ApplicationVersion>
    <ApplicationName>MiSeq Control Software</ApplicationName>
  </Setup>
  <RTAVersion>1.18.54</RTAVersion>
  <Chemistry>Amplicon</Chemistry>
  <Reads>
    <RunInfoRead Number="1" NumCycles="251" IsIndexedRead="N" />
    <RunInfoRead Number="2" NumCycles="8" IsIndexedRead="Y" />
  </Reads>
  <ReagentKitVersion>Version3</ReagentKitVersion>
  <Empty></Empty>
</RunParameters>`
	rp, err := ParseRunParameters("runParameters.xml", []byte(miseq))
	if err != nil {
		t.Fatal(err)
	}
	want := RunParameters{
		"EnableCloud": "false", "SupportMultipleSurfacesInUI": "true", "ApplicationVersion": "2.6.2.1",
		"ApplicationName": "MiSeq Control Software", "RTAVersion": "1.18.54", "Chemistry": "Amplicon",
		"RunInfoRead": []string{"", ""}, "ReagentKitVersion": "Version3", "Empty": "",
	}
	if !reflect.DeepEqual(rp, want) {
		t.Errorf("got %#v\nwant %#v", rp, want)
	}
	if got := strings.Join(rp.DriftFields(), ","); got != "runparameters.ApplicationName,runparameters.ApplicationVersion,runparameters.RTAVersion,runparameters.ReagentKitVersion" {
		t.Errorf("DriftFields = %s", got)
	}
	bad := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"wrong root", "<?xml version=\"1.0\"?>\n<RunInfo/>", 2, "root element is <RunInfo>, want <RunParameters>"},
		{"unclosed", "<RunParameters>\n<Setup>\n<A>1</A>\n</RunParameters>", 4, "malformed XML"},
		{"bad entity", "<RunParameters>\n<A>&bogus;</A>\n</RunParameters>", 2, "malformed XML"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRunParameters("runParameters.xml", []byte(tc.in))
			wantFileErr(t, err, "runParameters.xml", tc.line, tc.msg)
		})
	}
}

func TestParseSampleSheet(t *testing.T) {
	const v2 = "[Header]\nFileFormatVersion,2\nRunName,Run42,,,\n\n[Reads]\nRead1Cycles,151\nIndex1Cycles,8\n\n" +
		"[BCLConvert_Settings]\nSoftwareVersion,4.2.7\n\n[Cloud_Settings]\nGeneratedVersion,,,\n\n[BCLConvert_Data]\nLane,Sample_ID,Index,Species\n" +
		"1,S1,ACGTACGT,Homo sapiens\n1,S2,\"TGCA,TGCA\",mouse\n2,S3\n"
	const v1 = "\ufeff[Header],,,\r\nIEMFileVersion,5,,\r\nDate,4/24/2015,,\r\n,,,\r\n[Reads],,,\r\n251,,,\r\n251,,,\r\n" +
		"[Settings],,,\r\nAdapter,CTGTCTCTTATACACATCT,,\r\n[Data],,,\r\nSample_ID,Sample_Name,index,Sample_Project\r\nS1,A,ACGT,P1\r\n"
	s, err := ParseSampleSheet("SampleSheet.csv", []byte(v2))
	if err != nil {
		t.Fatal(err)
	}
	want2 := SampleSheet{
		"Header":              map[string]string{"FileFormatVersion": "2", "RunName": "Run42"},
		"Reads":               map[string]string{"Read1Cycles": "151", "Index1Cycles": "8"},
		"BCLConvert_Settings": map[string]string{"SoftwareVersion": "4.2.7"},
		"Cloud_Settings":      map[string]string{"GeneratedVersion": ""}, // a key without a value is not a list
		"BCLConvert_Data": []map[string]string{
			{"Lane": "1", "Sample_ID": "S1", "Index": "ACGTACGT", "Species": "Homo sapiens"},
			{"Lane": "1", "Sample_ID": "S2", "Index": "TGCA,TGCA", "Species": "mouse"},
			{"Lane": "2", "Sample_ID": "S3", "Index": "", "Species": ""},
		},
	}
	if !reflect.DeepEqual(s, want2) || s.Version() != 2 {
		t.Errorf("v2: got %#v (version %d)", s, s.Version())
	}
	s, err = ParseSampleSheet("SampleSheet.csv", []byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	want1 := SampleSheet{
		"Header":   map[string]string{"IEMFileVersion": "5", "Date": "4/24/2015"},
		"Reads":    []string{"251", "251"},
		"Settings": map[string]string{"Adapter": "CTGTCTCTTATACACATCT"},
		"Data":     []map[string]string{{"Sample_ID": "S1", "Sample_Name": "A", "index": "ACGT", "Sample_Project": "P1"}},
	}
	if !reflect.DeepEqual(s, want1) || s.Version() != 1 {
		t.Errorf("v1: got %#v (version %d)", s, s.Version())
	}
	bad := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"row before section", "FileFormatVersion,2\n[Header]\n", 1, "row before the first [Section]"},
		{"repeated section", "[Header]\na,1\n[Reads]\n151\n[Header]\nb,2\n", 5, "section [Header] repeated (first at line 1)"},
		{"bad header", "[Header\na,1\n", 1, "bad section header"},
		{"section with cells", "[Header],x\na,1\n", 1, "bad section header"},
		{"three cells", "[Header]\nFileFormatVersion,2\nRunName,a,b\n", 3, "key/value row has 3 cells, want 2"},
		{"duplicate key", "[Header]\nRunName,a\n\nRunName,b\n", 4, `duplicate key "RunName" (first at line 2)`},
		{"duplicate column", "[BCLConvert_Data]\nSample_ID,Index,Sample_ID\n", 2, `duplicate column "Sample_ID"`},
		{"empty column", "[Data]\nSample_ID,,Index\n", 2, "header column 2 is empty"},
		{"long row", "[Header]\nFileFormatVersion,2\n[BCLConvert_Data]\nSample_ID,Index\nS1,ACGT,extra\n", 5, "row has 3 cells, header has 2 columns"},
		{"no header row", "[Header]\na,1\n[Data]\n", 3, "[Data]: no header row"},
		{"bad quote", "[Header]\nRunName,\"a\"b\n", 2, "malformed CSV"},
		{"not a sheet", "", 0, "no [Section] found"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSampleSheet("SampleSheet.csv", []byte(tc.in))
			wantFileErr(t, err, "SampleSheet.csv", tc.line, tc.msg)
		})
	}
}

func TestParseSidecars(t *testing.T) {
	j, err := ParseJSONSidecar("s.meta.json", []byte("\ufeff{\"a\": 1.5, \"b\": [true, null, \"x\"], \"n\": 12345678901234567890}"))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"a": json.Number("1.5"), "b": []any{true, nil, "x"}, "n": json.Number("12345678901234567890")}; !reflect.DeepEqual(j, want) {
		t.Errorf("json: %#v", j)
	}
	y, err := ParseYAMLSidecar("s.yaml", []byte("project: P1\ncount: 3\nratio: 0.5\nwhen: 2026-12-02\nok: yes\nflag: true\nbase: &b {k: v}\ncopy: *b\nlist: [1, two]\nnothing: ~\n"))
	if err != nil {
		t.Fatal(err)
	}
	// YAML 1.2 (yaml.v3): "yes" is a string; a date stays its text.
	wantY := map[string]any{"project": "P1", "count": json.Number("3"), "ratio": json.Number("0.5"), "when": "2026-12-02", "ok": "yes",
		"flag": true, "base": map[string]any{"k": "v"}, "copy": map[string]any{"k": "v"}, "list": []any{json.Number("1"), "two"}, "nothing": nil}
	if !reflect.DeepEqual(y, wantY) {
		t.Errorf("yaml: %#v", y)
	}
	// Numbers keep their text: a long integer is not rounded through float64.
	if v, err := ParseYAMLSidecar("n.yaml", []byte("a: 123456789012345678901234567890\nb: 1e3\nc: 0x1F\n")); err != nil ||
		!reflect.DeepEqual(v, map[string]any{"a": json.Number("123456789012345678901234567890"), "b": json.Number("1e3"), "c": json.Number("31")}) {
		t.Errorf("yaml numbers: %#v %v", v, err)
	}
	if v, err := ParseYAMLSidecar("e.yaml", []byte("# only a comment\n")); err != nil || v != nil {
		t.Errorf("empty yaml: %v %v", v, err)
	}
	bad := []struct {
		name, file, in string
		line           int
		msg            string
	}{
		{"json syntax", "s.meta.json", "{\n  \"a\": 1,\n  \"b\": }\n", 3, "malformed JSON"},
		{"json truncated", "s.meta.json", "{\n  \"a\": [1,\n", 2, "malformed JSON: unexpected EOF"},
		{"json trailing", "s.meta.json", "{\"a\": 1}\n{\"b\": 2}\n", 2, "trailing data after the JSON value"},
		{"yaml syntax", "s.yaml", "a: 1\nb: [1, 2\nc: 3\n", 2, "malformed YAML"},
		{"yaml tab indent", "s.yaml", "a:\n\tb: 1\n", 2, "malformed YAML"},
		{"yaml duplicate", "s.yaml", "a: 1\nb: 2\na: 3\n", 3, "duplicate key"},
		{"yaml int key", "s.yaml", "a: 1\n42: x\n", 2, `mapping key "42" is int, want a string`},
		{"yaml inf", "s.yaml", "a: 1\nb: .inf\n", 2, `".inf" is not a JSON number`},
		{"yaml binary", "s.yaml", "a: !!binary aGVsbG8=\n", 1, "no JSON equivalent"},
		{"yaml merge", "s.yaml", "base: &b {k: v}\nc:\n  <<: *b\n", 3, "merge keys"},
		{"yaml two docs", "s.yaml", "a: 1\n---\nb: 2\n", 2, "more than one YAML document"},
		{"yaml unclosed map", "s.yaml", "a: 1\nb: {x: 1\nc: 3\n", 2, "did not find expected ',' or '}'"},
		{"yaml bad second doc", "s.yaml", "a: 1\n---\nb: [\n", 4 /* end of input */, "more than one YAML document"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if strings.HasSuffix(tc.file, ".json") {
				_, err = ParseJSONSidecar(tc.file, []byte(tc.in))
			} else {
				_, err = ParseYAMLSidecar(tc.file, []byte(tc.in))
			}
			wantFileErr(t, err, tc.file, tc.line, tc.msg)
		})
	}
	t.Run("alias bomb", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
		for i := 1; i < 8; i++ {
			b.WriteString("a" + itoa(i) + ": &a" + itoa(i) + " [")
			for k := 0; k < 10; k++ {
				if k > 0 {
					b.WriteString(", ")
				}
				b.WriteString("*a" + itoa(i-1))
			}
			b.WriteString("]\n")
		}
		_, err := ParseYAMLSidecar("bomb.yaml", []byte(b.String()))
		var fe *FileError
		if !errors.As(err, &fe) || !strings.Contains(fe.Msg, "alias bomb") {
			t.Errorf("err %v, want the alias bomb refused", err)
		}
	})
	t.Run("extension", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "x.txt")
		os.WriteFile(f, []byte("{}"), 0o644)
		_, err := ReadSidecar(f)
		wantFileErr(t, err, f, 0, "must end in .json, .yaml or .yml")
	})
	t.Run("too large", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "big.json")
		if err := os.WriteFile(f, make([]byte, MaxFileSize+1), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadSidecar(f)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("err %v, want ErrTooLarge", err)
		}
	})
}

func TestTemplate(t *testing.T) {
	cases := []struct {
		tmpl, rel string
		want      map[string]string // nil: no match
	}{
		{"{instrument}/{run_id}/**", "LH00001/20261202_run", map[string]string{"instrument": "LH00001", "run_id": "20261202_run"}},
		{"{instrument}/{run_id}/**", "LH00001/20261202_run/Data/Intensities", map[string]string{"instrument": "LH00001", "run_id": "20261202_run"}},
		{"{instrument}/{run_id}/**", "LH00001", nil},
		{"{instrument}/{run_id}", "LH00001/r/x", nil},
		{"runs/{year}/{run_id}", "runs/2026/r42", map[string]string{"year": "2026", "run_id": "r42"}},
		{"runs/{year}/{run_id}", "other/2026/r42", nil},
		{"*_{lab}/{run}/**", "x_lab/run1", nil}, // a field must be a whole segment: parse error below
		{"**/{run_id}", "a/b/c/run7", map[string]string{"run_id": "run7"}},
		{"{project}/**", "P1\\sub\\file", map[string]string{"project": "P1"}},
		{"{a}/**", "../x", nil},
		{"**", "", map[string]string{}},
		{"{a}/**", "", nil},
		{"{a}", "/abs", nil},
	}
	for _, tc := range cases {
		tp, err := ParseTemplate(tc.tmpl)
		if err != nil {
			if tc.tmpl == "*_{lab}/{run}/**" {
				continue
			}
			t.Fatalf("%s: %v", tc.tmpl, err)
		}
		got, ok := tp.Match(tc.rel)
		if tc.want == nil {
			if ok {
				t.Errorf("%s ~ %s: matched %v, want no match", tc.tmpl, tc.rel, got)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s ~ %s: %v %v, want %v", tc.tmpl, tc.rel, got, ok, tc.want)
		}
	}
	bad := map[string]string{
		"":                   "empty",
		"/abs/{x}":           "must be relative",
		"a//b":               "empty segment 2",
		"x_{lab}/b":          "a field must be a whole segment",
		"{1bad}/x":           "field name must match",
		"{a}/{a}":            "field {a} appears twice",
		"[unclosed/{run_id}": "not a valid glob",
	}
	for tmpl, msg := range bad {
		_, err := ParseTemplate(tmpl)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseTemplate(%q) = %v, want %q", tmpl, err, msg)
		}
	}
}
