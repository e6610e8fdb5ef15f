package uploader

import (
	"sync/atomic"
	"time"
)

// Progress is one upload in flight, as InFlight reports it.
type Progress struct {
	Watch     string    // the watch root the file is under
	Path      string    // the file, relative to Watch, slash-separated
	Target    string    // the target's name
	Key       string    // the object key it goes to
	Done      int64     // bytes the target has acknowledged so far (whole chunks)
	Size      int64     // the file's size
	StartedAt time.Time // when a worker took the file
}

// InFlight returns the uploads in progress now, at most one per worker, in
// worker order. Done counts the bytes of the chunks (parts, or the whole
// small file) the target has acknowledged, so it moves in steps of
// max_chunk_size; a file is in flight from the moment a worker takes it
// (hashing included) until its outcome is decided. It reads atomics only:
// call it as often as you like.
func (u *Uploader) InFlight() []Progress {
	var out []Progress
	for i := range u.slots {
		s := &u.slots[i]
		f := s.cur.Load()
		if f == nil {
			continue
		}
		done := s.done.Load()
		if s.cur.Load() != f {
			continue // the worker moved on meanwhile
		}
		p := *f
		p.Done = min(done, p.Size)
		out = append(out, p)
	}
	return out
}

// Rate is the upload rate in bytes per second: the bytes targets
// acknowledged over the last RateWindow (or since StartedAt, when younger).
func (u *Uploader) Rate() float64 { return u.Stats.meter.rate(u.o.Now(), u.StartedAt()) }

// StartedAt is when the Uploader was made, or the first of those that
// share its Stats.
func (u *Uploader) StartedAt() time.Time { return time.Unix(0, u.Stats.started.Load()) }

// RateWindow is the span Rate averages over.
const RateWindow = 20 * time.Second

// slot is one worker's upload in flight. The worker stores a new *Progress
// (never changed afterwards) for each file and adds to done as chunks are
// acknowledged; readers load both without locks.
type slot struct {
	cur  atomic.Pointer[Progress]
	done atomic.Int64
}

func (s *slot) start(p *Progress) {
	s.cur.Store(nil)
	s.done.Store(0)
	s.cur.Store(p)
}

// rekey records that the upload goes to another key (on_change = "version").
func (s *slot) rekey(key string) {
	if p := s.cur.Load(); p != nil && p.Key != key {
		q := *p
		q.Key = key
		s.cur.Store(&q)
	}
}

func (s *slot) end() { s.cur.Store(nil) }

// meter counts acknowledged bytes per second in a ring of buckets, each one
// atomic word: the second it counts (low 24 bits of the Unix second) in the
// top 24 bits, its bytes (up to 1 TiB) below. Adding is a compare-and-swap
// on one word; no lock.
type meter struct {
	b [meterSlots]atomic.Uint64
}

const (
	meterSlots = 32 // more than RateWindow's seconds, so a bucket is not reused within it
	meterShift = 40
	meterBytes = 1<<meterShift - 1
	meterSecs  = 1<<24 - 1
)

func (m *meter) add(now time.Time, n int64) {
	if n <= 0 {
		return
	}
	sec := now.Unix()
	tag := uint64(sec) & meterSecs
	b := &m.b[uint64(sec)%meterSlots]
	for {
		old := b.Load()
		var v uint64
		if old>>meterShift == tag {
			v = old & meterBytes
		}
		v = min(v+uint64(n), meterBytes)
		if b.CompareAndSwap(old, tag<<meterShift|v) {
			return
		}
	}
}

// rate is the bytes per second over the last RateWindow before now (the
// current second partly), or since start when that is more recent; at
// least one second is assumed, so a first chunk does not read as a burst.
func (m *meter) rate(now, start time.Time) float64 {
	sec := now.Unix()
	// The window's buckets: RateWindow-1 whole seconds and the current one
	// so far, none before start.
	first := sec - int64(RateWindow/time.Second) + 1
	from := time.Unix(first, 0)
	if start.After(from) {
		first, from = start.Unix(), start
	}
	var sum uint64
	for s := first; s <= sec; s++ {
		v := m.b[uint64(s)%meterSlots].Load()
		if v>>meterShift == uint64(s)&meterSecs {
			sum += v & meterBytes
		}
	}
	span := max(now.Sub(from), time.Second)
	return float64(sum) / span.Seconds()
}

// Failure is an upload failure, as LastFailure reports it.
type Failure struct {
	Time    time.Time
	Watch   string // the watch root
	Path    string // the file, relative to Watch
	Target  string
	Class   string // "transient" (retried), or the permanent class recorded with a dead letter (ClassDenied, ...)
	Message string
}

// ClassTransient is the class of a failure that is retried.
const ClassTransient = "transient"

// LastFailure returns the most recent failure: a request that failed and
// is retried, or a file that failed permanently.
func (u *Uploader) LastFailure() (Failure, bool) {
	if f := u.Stats.lastFailure.Load(); f != nil {
		return *f, true
	}
	return Failure{}, false
}

// failed records a failure of the worker's current file.
func (w *worker) failed(class string, err error) {
	if err == nil {
		return
	}
	f := &Failure{Time: w.u.o.Now(), Class: class, Message: err.Error()}
	if p := w.slot.cur.Load(); p != nil {
		f.Watch, f.Path, f.Target = p.Watch, p.Path, p.Target
	}
	w.u.Stats.lastFailure.Store(f)
}
