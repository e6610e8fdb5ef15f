package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RO-Crate 1.1: https://w3id.org/ro/crate/1.1
const (
	crateContext = "https://w3id.org/ro/crate/1.1/context"
	crateSpec    = "https://w3id.org/ro/crate/1.1"
)

// DefaultLicense is what a dataset's crate says when its watch sets no
// `license`: the data belongs to whoever owns the run, and ferry, which only
// moves it, grants nobody any right to it. RO-Crate requires a license on
// the root dataset; an open licence chosen by default would be a grant the
// facility never made.
const DefaultLicense = "all-rights-reserved"

// Crate describes one closed dataset for ro-crate-metadata.json.
type Crate struct {
	ID          string // the dataset's id (its folder relative to the watch root)
	Name        string
	Description string
	// Published is when the dataset closed (the crate's datePublished).
	Published time.Time
	// License: an SPDX identifier ("CC-BY-4.0"), a URL, or DefaultLicense.
	License string
	Files   []File
	// Manifest is manifest-sha256.txt as written (it is part of the crate).
	Manifest File
	// The transfer: ferry's version, the first and last upload, the
	// completion signal and the run's outcome.
	FerryVersion string
	Host         string // the acquisition machine
	Started      time.Time
	Ended        time.Time
	Signal       string
	Outcome      Outcome
	Reason       string
	Target       string // where the dataset landed, e.g. "s3://bucket/prefix/run1/" (no credentials)
	// Extra holds further properties of the root dataset (the metadata
	// captured for it); keys that RO-Crate's own structure uses are refused.
	Extra map[string]any
	// Entities are further contextual entities that Extra refers to, each
	// with an "@id" starting with "#" that no other entity has.
	Entities []map[string]any
}

var spdxID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+-]*$`)

type node = map[string]any

func ref(id string) node { return node{"@id": id} }

// JSON formats ro-crate-metadata.json.
func (c Crate) JSON() ([]byte, error) {
	if c.Name == "" || c.Published.IsZero() {
		return nil, errors.New("crate: a name and a publication time are required")
	}
	for _, f := range append(slices.Clone(c.Files), c.Manifest) {
		if err := checkFile(f); err != nil {
			return nil, err
		}
		if Reserved(f.Path) && f.Path != ManifestName {
			return nil, fmt.Errorf("crate: %q is a name ferry reserves", f.Path)
		}
	}
	license, licenseEntity, err := licenseOf(c.License)
	if err != nil {
		return nil, err
	}
	files := slices.Clone(c.Files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	files = append(files, c.Manifest)

	var parts []node
	var entities []node
	for _, f := range files {
		id := fileID(f.Path)
		parts = append(parts, ref(id))
		e := node{
			"@id":         id,
			"@type":       "File",
			"name":        f.Path,
			"contentSize": strconv.FormatInt(f.Size, 10),
			"sha256":      strings.ToLower(f.SHA256),
		}
		if !f.ModTime.IsZero() {
			e["dateModified"] = f.ModTime.UTC().Format(time.RFC3339)
		}
		entities = append(entities, e)
	}
	const ferryID = "#ferry"
	transferID := "#transfer"
	root := node{
		"@id":                "./",
		"@type":              "Dataset",
		"identifier":         c.ID,
		"name":               c.Name,
		"description":        c.Description,
		"datePublished":      c.Published.UTC().Format(time.RFC3339),
		"license":            ref(license),
		"hasPart":            parts,
		"creativeWorkStatus": c.Outcome.String(),
	}
	if c.Description == "" {
		root["description"] = c.Name
	}
	for k, v := range c.Extra {
		if _, taken := root[k]; taken || strings.HasPrefix(k, "@") {
			return nil, fmt.Errorf("crate: metadata property %q would replace one ferry writes", k)
		}
		root[k] = v
	}
	ferry := node{
		"@id":   ferryID,
		"@type": "SoftwareApplication",
		"name":  "ferry",
		"description": "Moves instrument data to research storage, journaling every step; " +
			"wrote this crate after every file of the dataset had landed and been verified.",
	}
	if c.FerryVersion != "" {
		ferry["version"] = c.FerryVersion
		ferry["softwareVersion"] = c.FerryVersion
	}
	transfer := node{
		"@id":          transferID,
		"@type":        "CreateAction",
		"name":         "Transfer of " + c.Name + " to research storage",
		"agent":        ref(ferryID),
		"instrument":   ref(ferryID),
		"result":       ref("./"),
		"actionStatus": ref("http://schema.org/CompletedActionStatus"),
	}
	desc := "Completed by: " + c.Signal + ". Run outcome: " + c.Outcome.String()
	if c.Reason != "" {
		desc += " (" + c.Reason + ")"
	}
	desc += "."
	if !c.Started.IsZero() {
		transfer["startTime"] = c.Started.UTC().Format(time.RFC3339)
	}
	if !c.Ended.IsZero() {
		transfer["endTime"] = c.Ended.UTC().Format(time.RFC3339)
	}
	if c.Host != "" {
		desc += " From " + c.Host + "."
	}
	if c.Target != "" {
		desc += " To " + c.Target + "."
	}
	transfer["description"] = desc
	if c.Outcome == FailedRun {
		transfer["error"] = c.Reason
	}
	graph := []node{
		{
			"@id":        CrateName,
			"@type":      "CreativeWork",
			"conformsTo": ref(crateSpec),
			"about":      ref("./"),
		},
		root,
		licenseEntity,
		ferry,
		transfer,
	}
	graph = append(graph, entities...)
	ids := map[string]bool{}
	for _, n := range graph {
		ids[fmt.Sprint(n["@id"])] = true
	}
	for _, e := range c.Entities {
		id, _ := e["@id"].(string)
		if !strings.HasPrefix(id, "#") || ids[id] {
			return nil, fmt.Errorf("crate: entity id %q: want a new local id starting with #", id)
		}
		ids[id] = true
		graph = append(graph, e)
	}
	doc := node{"@context": crateContext, "@graph": graph}
	return json.MarshalIndent(doc, "", "  ")
}

func licenseOf(l string) (string, node, error) {
	switch {
	case l == "" || l == DefaultLicense:
		id := "#" + DefaultLicense
		return id, node{
			"@id":   id,
			"@type": "CreativeWork",
			"name":  "All rights reserved",
			"description": "No licence was set for this dataset: all rights stay with its owner. " +
				"Ask the facility before reusing it.",
		}, nil
	case strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://"):
		if _, err := url.Parse(l); err != nil {
			return "", nil, fmt.Errorf("license %q: %v", l, err)
		}
		return l, node{"@id": l, "@type": "CreativeWork", "name": l}, nil
	case spdxID.MatchString(l):
		id := "https://spdx.org/licenses/" + l
		return id, node{"@id": id, "@type": "CreativeWork", "name": l, "identifier": l}, nil
	}
	return "", nil, fmt.Errorf("license %q: use an SPDX identifier such as \"CC-BY-4.0\", a URL, or %q", l, DefaultLicense)
}

// ValidLicense checks a `license` value as the crate will use it.
func ValidLicense(l string) error {
	_, _, err := licenseOf(l)
	return err
}

// fileID is a file's @id: its path as a URI reference relative to the
// crate's root (RO-Crate 1.1, "Data Entities": spaces and other characters
// are percent-encoded).
func fileID(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	id := strings.Join(segs, "/")
	// A first segment with a colon would read as a URI scheme.
	if first, _, _ := strings.Cut(id, "/"); strings.Contains(first, ":") {
		id = "./" + id
	}
	return id
}
