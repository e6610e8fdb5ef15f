// Package dataset is what ferry knows of a run (a sequencing run folder, an
// imaging session): when the instrument says it is complete, and the two
// files written last when it closes, manifest-sha256.txt and
// ro-crate-metadata.json. It reads the source folder and formats bytes; the
// journal decides when and the sinks write.
package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Kind is the kind of a completion condition.
type Kind int

const (
	// Illumina completes from the markers Illumina instruments write
	// (CopyComplete.txt, RTAComplete.txt, RunCompletionStatus.xml).
	Illumina Kind = iota + 1
	// Marker completes when a named file appears in the dataset's root.
	Marker
	// Quiet completes when nothing in the dataset was new or changed for a
	// duration.
	Quiet
)

// Condition is one completion condition, as the `complete` key names it:
// "illumina", "marker:NAME" or "quiet:DURATION".
type Condition struct {
	Kind  Kind
	Name  string        // Marker: a file name or a path.Match pattern, relative to the dataset root
	Quiet time.Duration // Quiet: how long nothing may change
}

func (c Condition) String() string {
	switch c.Kind {
	case Illumina:
		return "illumina"
	case Marker:
		return "marker:" + c.Name
	case Quiet:
		return "quiet:" + c.Quiet.String()
	}
	return "?"
}

// MinQuiet is the shortest quiet period accepted: shorter ones would close
// a dataset between two files of a writer that is merely slow.
const MinQuiet = time.Second

// ParseCondition parses one value of the `complete` key.
func ParseCondition(s string) (Condition, error) {
	kind, arg, hasArg := strings.Cut(strings.TrimSpace(s), ":")
	switch strings.ToLower(kind) {
	case "illumina":
		if hasArg {
			return Condition{}, fmt.Errorf("complete %q: illumina takes no argument", s)
		}
		return Condition{Kind: Illumina}, nil
	case "marker":
		name := strings.TrimSpace(arg)
		if name == "" {
			return Condition{}, fmt.Errorf("complete %q: marker needs a file name, e.g. \"marker:.done\"", s)
		}
		if strings.Contains(name, `\`) {
			return Condition{}, fmt.Errorf("complete %q: write the marker's path with / (it is relative to the dataset's folder)", s)
		}
		if path.IsAbs(name) || name != path.Clean(name) || name == ".." || strings.HasPrefix(name, "../") {
			return Condition{}, fmt.Errorf("complete %q: the marker must be a clean path inside the dataset's folder", s)
		}
		if _, err := path.Match(name, ""); err != nil {
			return Condition{}, fmt.Errorf("complete %q: bad pattern: %v", s, err)
		}
		return Condition{Kind: Marker, Name: name}, nil
	case "quiet":
		d, err := time.ParseDuration(strings.TrimSpace(arg))
		if err != nil {
			return Condition{}, fmt.Errorf("complete %q: quiet needs a duration such as \"quiet:2h\"", s)
		}
		if d < MinQuiet {
			return Condition{}, fmt.Errorf("complete %q: a quiet period must be at least %v", s, MinQuiet)
		}
		return Condition{Kind: Quiet, Quiet: d}, nil
	}
	return Condition{}, fmt.Errorf("complete %q: unknown condition (use \"illumina\", \"marker:NAME\" or \"quiet:DURATION\")", s)
}

// Conditions are the conditions of one watch: the dataset is complete when
// any one holds.
type Conditions []Condition

// ParseConditions parses the `complete` key's values; at least one.
func ParseConditions(vals []string) (Conditions, error) {
	if len(vals) == 0 {
		return nil, errors.New("complete: give at least one condition")
	}
	var cs Conditions
	for _, v := range vals {
		c, err := ParseCondition(v)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// Outcome is how a run ended, as far as the instrument says.
type Outcome int

const (
	// Completed: no sign of failure (the instrument reported success, or
	// wrote nothing about it).
	Completed Outcome = iota
	// FailedRun: the instrument reported that the run did not complete
	// successfully; its files are still uploaded.
	FailedRun
)

func (o Outcome) String() string {
	if o == FailedRun {
		return "failed_run"
	}
	return "completed"
}

// Verdict is what Evaluate found.
type Verdict struct {
	Complete bool
	// Signal names what completed it: "CopyComplete.txt",
	// "RTAComplete.txt + 15m0s quiet", "marker:.done", "quiet:2h0m0s".
	Signal string
	// Outcome and Reason come from the instrument's own report
	// (RunCompletionStatus.xml), whether or not the dataset is complete yet.
	Outcome Outcome
	Reason  string
	// Recheck, when not zero, is the moment a quiet period ends if nothing
	// changes before it: the caller evaluates again then.
	Recheck time.Time
	// Notes are things worth a log line (a status file that does not parse).
	Notes []string
}

// Evaluate checks the conditions against a dataset's source folder, fsys
// rooted there. lastChange is the newest moment a file of the dataset was
// seen new or changed (zero: none seen yet, which never completes a quiet
// condition); now is the caller's clock.
func (cs Conditions) Evaluate(fsys fs.FS, lastChange, now time.Time) Verdict {
	var v Verdict
	var done *Verdict
	for _, c := range cs {
		var got Verdict
		switch c.Kind {
		case Illumina:
			got = illumina(fsys, lastChange, now)
			// The instrument's report stands whichever condition completes.
			v.Outcome, v.Reason = got.Outcome, got.Reason
			v.Notes = append(v.Notes, got.Notes...)
		case Marker:
			if markerPresent(fsys, c.Name) {
				got = Verdict{Complete: true, Signal: c.String()}
			}
		case Quiet:
			got = quiet(c.Quiet, c.String(), lastChange, now)
		}
		if got.Complete && done == nil {
			g := got
			done = &g
		}
		if !got.Recheck.IsZero() && (v.Recheck.IsZero() || got.Recheck.Before(v.Recheck)) {
			v.Recheck = got.Recheck
		}
	}
	if done != nil {
		v.Complete, v.Signal, v.Recheck = true, done.Signal, time.Time{}
	}
	return v
}

func quiet(d time.Duration, signal string, lastChange, now time.Time) Verdict {
	if lastChange.IsZero() {
		return Verdict{}
	}
	end := lastChange.Add(d)
	if !now.Before(end) {
		return Verdict{Complete: true, Signal: signal}
	}
	return Verdict{Recheck: end}
}

func markerPresent(fsys fs.FS, name string) bool {
	if !strings.ContainsAny(name, `*?[`) {
		fi, err := fs.Stat(fsys, name)
		return err == nil && fi.Mode().IsRegular()
	}
	matches, err := fs.Glob(fsys, name)
	if err != nil {
		return false
	}
	for _, m := range matches {
		if fi, err := fs.Stat(fsys, m); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}
