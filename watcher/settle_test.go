package watcher

import (
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/srcfile"
)

// TestSettle is the settle decision as a table: no filesystem, no clock.
func TestSettle(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	mtime := t0.Add(-time.Minute)
	v1 := srcfile.Stat{Size: 100, ModTime: mtime, ID: srcfile.ID{Volume: 1, Index: 7}}
	grown := v1
	grown.Size = 200
	touched := v1
	touched.ModTime = mtime.Add(time.Nanosecond)
	replaced := v1 // another file under the name: same size and mtime
	replaced.ID.Index = 8
	seen := Observation{Stat: v1, ChangedAt: t0}
	closed := seen
	closed.CloseWrite = true
	const settle = 30 * time.Second
	pol := Policy{Settle: settle}
	patient := Policy{Settle: settle, MaxOpenWait: 10 * time.Minute}

	for _, c := range []struct {
		name string
		obs  Observation
		cur  Current
		now  time.Time
		pol  Policy
		want Decision
	}{
		{"first sight starts the quiet period", Observation{}, Current{Stat: v1}, t0, pol,
			Decision{Verdict: Wait, After: settle, Obs: seen}},
		{"growing file starts over", seen, Current{Stat: grown}, t0.Add(20 * time.Second), pol,
			Decision{Verdict: Wait, After: settle, Obs: Observation{Stat: grown, ChangedAt: t0.Add(20 * time.Second)}}},
		{"growing file past the settle period still starts over", seen, Current{Stat: grown, Writer: WriterNone}, t0.Add(time.Hour), pol,
			Decision{Verdict: Wait, After: settle, Obs: Observation{Stat: grown, ChangedAt: t0.Add(time.Hour)}}},
		{"same size, new mtime starts over", seen, Current{Stat: touched}, t0.Add(time.Minute), pol,
			Decision{Verdict: Wait, After: settle, Obs: Observation{Stat: touched, ChangedAt: t0.Add(time.Minute)}}},
		{"replaced by another file of the same size and mtime starts over", seen, Current{Stat: replaced}, t0.Add(time.Minute), pol,
			Decision{Verdict: Wait, After: settle, Obs: Observation{Stat: replaced, ChangedAt: t0.Add(time.Minute)}}},
		{"a change clears a close seen for the old version", closed, Current{Stat: grown}, t0.Add(time.Minute), pol,
			Decision{Verdict: Wait, After: settle, Obs: Observation{Stat: grown, ChangedAt: t0.Add(time.Minute)}}},
		{"a change wins over a writer's answer", seen, Current{Stat: grown, Writer: WriterHolds}, t0.Add(time.Hour), patient,
			Decision{Verdict: Wait, After: settle, Obs: Observation{Stat: grown, ChangedAt: t0.Add(time.Hour)}}},
		{"vanished", seen, Current{Err: fmt.Errorf("lstat: %w", fs.ErrNotExist)}, t0.Add(time.Minute), pol,
			Decision{Verdict: Forget, Obs: seen}},
		{"no longer a regular file", seen, Current{Err: srcfile.ErrNotRegular}, t0.Add(time.Minute), pol,
			Decision{Verdict: Forget, Obs: seen}},
		{"stat error before the settle period", seen, Current{Err: fs.ErrPermission}, t0.Add(time.Second), pol,
			Decision{Verdict: Forget, Obs: seen}},
		{"unchanged, one ns before the settle period", seen, Current{Stat: v1}, t0.Add(settle - time.Nanosecond), pol,
			Decision{Verdict: Wait, After: time.Nanosecond, Obs: seen}},
		{"unchanged, halfway: wait the rest", seen, Current{Stat: v1}, t0.Add(settle / 2), pol,
			Decision{Verdict: Wait, After: settle / 2, Obs: seen}},
		{"unchanged, exactly at the settle period: ask about writers", seen, Current{Stat: v1}, t0.Add(settle), pol,
			Decision{Verdict: Probe, Obs: seen}},
		{"exactly at the settle period, no writer", seen, Current{Stat: v1, Writer: WriterNone}, t0.Add(settle), pol,
			Decision{Verdict: Settled, Signal: SignalQuiet, Obs: seen}},
		{"one ns before, no writer: not yet", seen, Current{Stat: v1, Writer: WriterNone}, t0.Add(settle - time.Nanosecond), pol,
			Decision{Verdict: Wait, After: time.Nanosecond, Obs: seen}},
		{"long quiet, no writer", seen, Current{Stat: v1, Writer: WriterNone}, t0.Add(time.Hour), pol,
			Decision{Verdict: Settled, Signal: SignalQuiet, Obs: seen}},
		{"a close seen does not yet release by itself", closed, Current{Stat: v1}, t0.Add(settle), pol,
			Decision{Verdict: Probe, Obs: closed}},
		{"held by a writer: look again a settle period later", seen, Current{Stat: v1, Writer: WriterHolds}, t0.Add(time.Hour), pol,
			Decision{Verdict: Wait, After: settle, Obs: seen}},
		{"held, far below max_open_wait", seen, Current{Stat: v1, Writer: WriterHolds}, t0.Add(settle), patient,
			Decision{Verdict: Wait, After: settle, Obs: seen}},
		{"held, max_open_wait nearer than a settle period", seen, Current{Stat: v1, Writer: WriterHolds}, t0.Add(10*time.Minute - time.Second), patient,
			Decision{Verdict: Wait, After: time.Second, Obs: seen}},
		{"held, exactly at max_open_wait", seen, Current{Stat: v1, Writer: WriterHolds}, t0.Add(10 * time.Minute), patient,
			Decision{Verdict: Settled, Signal: SignalTimeout, Obs: seen}},
		{"not held at max_open_wait: quiet", seen, Current{Stat: v1, Writer: WriterNone}, t0.Add(10 * time.Minute), patient,
			Decision{Verdict: Settled, Signal: SignalQuiet, Obs: seen}},
		{"no process holds it open for writing (Linux): close", seen, Current{Stat: v1, Writer: WriterNone, Probe: SignalClose}, t0.Add(settle), pol,
			Decision{Verdict: Settled, Signal: SignalClose, Obs: seen}},
		{"the sharing probe found it free (Windows): lock", seen, Current{Stat: v1, Writer: WriterNone, Probe: SignalLock}, t0.Add(settle), pol,
			Decision{Verdict: Settled, Signal: SignalLock, Obs: seen}},
		{"a close-after-write seen, nothing probed: close", closed, Current{Stat: v1, Writer: WriterNone}, t0.Add(settle), pol,
			Decision{Verdict: Settled, Signal: SignalClose, Obs: closed}},
		{"held by a process (Linux), past max_open_wait: timeout", seen, Current{Stat: v1, Writer: WriterHolds, Probe: SignalClose}, t0.Add(10 * time.Minute), patient,
			Decision{Verdict: Settled, Signal: SignalTimeout, Obs: seen}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Settle(c.obs, c.cur, c.now, c.pol)
			if got.Verdict != c.want.Verdict || got.Signal != c.want.Signal || got.After != c.want.After ||
				!got.Obs.Stat.Same(c.want.Obs.Stat) || !got.Obs.ChangedAt.Equal(c.want.Obs.ChangedAt) || got.Obs.CloseWrite != c.want.Obs.CloseWrite {
				t.Errorf("Settle(%+v, %+v, t0%+v) =\n  %v %q after %v, %+v\nwant\n  %v %q after %v, %+v",
					c.obs, c.cur, c.now.Sub(t0), got.Verdict, got.Signal, got.After, got.Obs, c.want.Verdict, c.want.Signal, c.want.After, c.want.Obs)
			}
		})
	}
}
