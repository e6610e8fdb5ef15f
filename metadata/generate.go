package metadata

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ExampleRun describes an Illumina-like run folder for tests and examples.
// The zero value of each field means the documented default.
type ExampleRun struct {
	RunID              string   // default "20261202_LH00001_0042_A22XYZLT3"
	Instrument         string   // default "LH00001"
	Flowcell           string   // default "22XYZLT3"
	Date               string   // RunInfo <Date> as written; default "2026-12-02T09:41:07Z" (YYMMDD like "261202" on older instruments)
	Species            []string // one sample per entry, its Species column; default ["Homo sapiens"]
	ApplicationVersion string   // RunParameters <ApplicationVersion>; default "1.2.0.28691"
	SampleSheetV1      bool     // write an IEM v1 sheet ([Data]) instead of v2 ([BCLConvert_Data])
}

func (o *ExampleRun) defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.RunID, "20261202_LH00001_0042_A22XYZLT3")
	def(&o.Instrument, "LH00001")
	def(&o.Flowcell, "22XYZLT3")
	def(&o.Date, "2026-12-02T09:41:07Z")
	def(&o.ApplicationVersion, "1.2.0.28691")
	if len(o.Species) == 0 {
		o.Species = []string{"Homo sapiens"}
	}
}

// exampleIndexes are distinct 8-base indexes for the samples.
var exampleIndexes = []string{"ACGTACGT", "TGCATGCA", "GATCGATC", "CTAGCTAG", "AACCGGTT", "TTGGCCAA", "AGTCAGTC", "TCAGTCAG"}

// WriteExampleRun writes RunInfo.xml, RunParameters.xml and SampleSheet.csv
// of an Illumina-like run into dir (created if needed), overwriting them.
// It writes no sequence data: callers add the files their test needs.
func WriteExampleRun(dir string, o ExampleRun) error {
	o.defaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	runNumber := 1
	if parts := strings.Split(o.RunID, "_"); len(parts) >= 3 {
		fmt.Sscan(strings.TrimLeft(parts[2], "0"), &runNumber)
	}
	runInfo := fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<RunInfo Version="6">
	<Run Id="%s" Number="%d">
		<Flowcell>%s</Flowcell>
		<Instrument>%s</Instrument>
		<Date>%s</Date>
		<Reads>
			<Read Number="1" NumCycles="151" IsIndexedRead="N" IsReverseComplement="N"/>
			<Read Number="2" NumCycles="8" IsIndexedRead="Y" IsReverseComplement="N"/>
			<Read Number="3" NumCycles="8" IsIndexedRead="Y" IsReverseComplement="Y"/>
			<Read Number="4" NumCycles="151" IsIndexedRead="N" IsReverseComplement="N"/>
		</Reads>
		<FlowcellLayout LaneCount="8" SurfaceCount="2" SwathCount="2" TileCount="98"/>
	</Run>
</RunInfo>
`, xmlEscape(o.RunID), runNumber, xmlEscape(o.Flowcell), xmlEscape(o.Instrument), xmlEscape(o.Date))
	runParams := fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<RunParameters xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
	<Side>A</Side>
	<Application>NovaSeqXSeries Control Software</Application>
	<ApplicationName>NovaSeqXSeries Control Software</ApplicationName>
	<ApplicationVersion>%s</ApplicationVersion>
	<SystemSuiteVersion>1.2.0</SystemSuiteVersion>
	<OutputFolder>s3://example/%s</OutputFolder>
	<InstrumentType>NovaSeqXPlus</InstrumentType>
	<RunId>%s</RunId>
	<PlannedReads>
		<Read ReadName="Read1" Cycles="151"/>
		<Read ReadName="Index1" Cycles="8"/>
		<Read ReadName="Index2" Cycles="8"/>
		<Read ReadName="Read2" Cycles="151"/>
	</PlannedReads>
	<Consumables>
		<Consumable>
			<Type>FlowCell</Type>
			<Mode>10B</Mode>
			<Version>1.0</Version>
		</Consumable>
		<Consumable>
			<Type>Reagent</Type>
			<Mode>10B</Mode>
			<Version>1.0</Version>
		</Consumable>
	</Consumables>
</RunParameters>
`, xmlEscape(o.ApplicationVersion), xmlEscape(o.RunID), xmlEscape(o.RunID))
	var ss strings.Builder
	if o.SampleSheetV1 {
		fmt.Fprintf(&ss, "[Header]\r\nIEMFileVersion,5\r\nExperiment Name,%s\r\nDate,%s\r\nWorkflow,GenerateFASTQ\r\nChemistry,Amplicon\r\n\r\n", csvCell(o.RunID), "12/2/2026")
		ss.WriteString("[Reads]\r\n151\r\n151\r\n\r\n[Settings]\r\nAdapter,CTGTCTCTTATACACATCT\r\n\r\n[Data]\r\n")
		ss.WriteString("Sample_ID,Sample_Name,I7_Index_ID,index,I5_Index_ID,index2,Sample_Project,Species\r\n")
		for i, sp := range o.Species {
			ix := exampleIndexes[i%len(exampleIndexes)]
			fmt.Fprintf(&ss, "S%d,Sample%d,N7%02d,%s,S5%02d,%s,P1,%s\r\n", i+1, i+1, i+1, ix, i+1, reverse(ix), csvCell(sp))
		}
	} else {
		fmt.Fprintf(&ss, "[Header]\nFileFormatVersion,2\nRunName,%s\nInstrumentPlatform,NovaSeqXSeries\nInstrumentType,NovaSeqXPlus\n\n", csvCell(o.RunID))
		ss.WriteString("[Reads]\nRead1Cycles,151\nRead2Cycles,151\nIndex1Cycles,8\nIndex2Cycles,8\n\n")
		ss.WriteString("[BCLConvert_Settings]\nSoftwareVersion,4.2.7\nFastqCompressionFormat,gzip\n\n[BCLConvert_Data]\n")
		ss.WriteString("Lane,Sample_ID,Index,Index2,Sample_Project,Species\n")
		for i, sp := range o.Species {
			ix := exampleIndexes[i%len(exampleIndexes)]
			fmt.Fprintf(&ss, "1,S%d,%s,%s,P1,%s\n", i+1, ix, reverse(ix), csvCell(sp))
		}
	}
	for name, body := range map[string]string{
		SourceRunInfo:       runInfo,
		SourceRunParameters: runParams,
		SourceSampleSheet:   ss.String(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

func csvCell(s string) string {
	if strings.ContainsAny(s, ",\"\r\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}
