package metadata

import "slices"

// RunParameters holds every leaf element of an Illumina RunParameters.xml
// by element name, as text. A name that occurs once maps to a string; a
// name that occurs more than once (e.g. <Cycles> per read on NovaSeq X)
// maps to a []string of its texts in document order. Attributes are not
// kept. The root element must be <RunParameters>.
type RunParameters map[string]any

// VersionFieldNames are the RunParameters leaf names that carry instrument
// software and chemistry versions across instrument families. Those present
// in a file are its default drift fields.
var VersionFieldNames = []string{
	"ApplicationName", "ApplicationVersion", "SystemSuiteVersion",
	"RtaVersion", "RTAVersion", "RecipeVersion", "RecipeFragmentVersion",
	"MCSVersion", "FPGAVersion", "ChemistryVersion", "ReagentKitVersion",
}

// ReadRunParameters reads and parses a RunParameters.xml file.
func ReadRunParameters(file string) (RunParameters, error) {
	b, err := readBounded(file)
	if err != nil {
		return nil, err
	}
	return ParseRunParameters(file, b)
}

// ParseRunParameters parses RunParameters.xml content.
func ParseRunParameters(file string, b []byte) (RunParameters, error) {
	root, err := parseXML(file, stripBOM(b))
	if err != nil {
		return nil, err
	}
	if root.name != "RunParameters" {
		return nil, fileErr(file, root.line, "root element is <%s>, want <RunParameters>", root.name)
	}
	rp := RunParameters{}
	var walk func(n *xnode)
	walk = func(n *xnode) {
		if len(n.children) == 0 {
			switch v := rp[n.name].(type) {
			case nil:
				rp[n.name] = n.text
			case string:
				rp[n.name] = []string{v, n.text}
			case []string:
				rp[n.name] = append(v, n.text)
			}
			return
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	for _, c := range root.children {
		walk(c)
	}
	return rp, nil
}

// DriftFields returns the document paths ("runparameters.NAME") of the
// version fields present in rp, sorted.
func (rp RunParameters) DriftFields() []string {
	var out []string
	for _, n := range VersionFieldNames {
		if _, ok := rp[n]; ok {
			out = append(out, "runparameters."+n)
		}
	}
	slices.Sort(out)
	return out
}
