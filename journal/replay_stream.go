package journal

import (
	"errors"
	"fmt"
	"time"
)

// ArchivedError says that the events a question needs were moved to an
// archive file.
type ArchivedError struct {
	Point ArchivePoint
}

func (e *ArchivedError) Error() string {
	return fmt.Sprintf("the events up to seq %d (before %s) are in the archive %s (sha256 %s): ask that file (--export %s)",
		e.Point.LastSeq, e.Point.Before.UTC().Format(time.RFC3339Nano), e.Point.Name, e.Point.SHA256, e.Point.Name)
}

// errStop ends a stream early.
var errStop = errors.New("stop")

// ReplayEvents replays a chain read from a stream: each(fn) calls fn for
// every event in seq order (it stops early when fn returns an error) and
// is called twice. The first pass checks the hash chain and finds the base
// of a chain that starts after an archive (seq F > 1): the file states
// recorded by the archived event whose last_seq is F-1, whose last_hash
// must be event F's prev_hash. The second pass applies the events up to
// the first one later than until (zero: all of them). Memory is one model
// per file whatever the number of events.
//
// Errors: a *ChainError for a broken chain, an *ArchivedError when until
// falls before the base, a *ReplayError when the events cannot be replayed.
func ReplayEvents(each func(fn func(Event) error) error, until time.Time) (*Replay, error) {
	v := NewRangeVerifier()
	var first Event
	var base *ArchivePoint
	var states []Event
	collect := 0
	err := each(func(e Event) error {
		if v.Count() == 0 {
			first = e
		}
		if err := v.Check(e); err != nil {
			return err
		}
		if collect > 0 {
			states = append(states, e)
			collect--
			return nil
		}
		if e.Kind == KindArchived && base == nil && first.Seq > 1 {
			a, err := ParseArchivePoint(e)
			if err != nil {
				return err
			}
			if a.LastSeq == first.Seq-1 {
				base, collect = &a, a.Files
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r := NewReplay()
	if v.Count() == 0 {
		return r, nil
	}
	switch {
	case first.Seq == 1 && first.PrevHash != GenesisHash:
		return nil, &ChainError{1, "the first event's prev_hash is not the genesis hash"}
	case first.Seq > 1 && base == nil:
		return nil, &ChainError{first.Seq, fmt.Sprintf("the chain starts at seq %d and no archived event in it accounts for seq %d and before (events were deleted, or this is a range export: replay needs the chain from seq 1 or from an archive point)", first.Seq, first.Seq-1)}
	case base != nil && base.LastHash != first.PrevHash:
		return nil, &ChainError{first.Seq, fmt.Sprintf("prev_hash does not match the last_hash the archived event at seq %d recorded", base.Seq)}
	case base != nil && collect > 0:
		return nil, &ReplayError{base.Seq, fmt.Sprintf("the chain ends before the %d file states of the archived event", base.Files)}
	}
	if base != nil {
		if err := r.SetBase(*base, states); err != nil {
			return nil, err
		}
		if !until.IsZero() && until.Before(base.LastTime) {
			return nil, &ArchivedError{*base}
		}
	}
	err = each(func(e Event) error {
		if !until.IsZero() && e.Time.After(until) {
			return errStop
		}
		return r.Apply(e)
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return r, nil
}
