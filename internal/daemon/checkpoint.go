package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
)

// CheckpointDir is where checkpoints go on every target, under its prefix:
// <prefix>_ferry/checkpoints/<host>/<event seq>-<audit seq>.json, both
// seqs zero-padded to 20 digits so that the latest sorts last.
const CheckpointDir = "_ferry/checkpoints/"

// checkpointGap is the least time between two checkpoints taken for
// completed batches: a burst of small batches makes one right away and one
// at the end of the gap, not one each.
const checkpointGap = time.Minute

// checkpointTimeout bounds one checkpoint upload: a target that does not
// answer holds up only the checkpointer, and only this long.
const checkpointTimeout = 30 * time.Second

// maxCheckpointSize bounds what verify --against-target reads back.
const maxCheckpointSize = 64 << 10

// CheckpointHost is the host name as it appears in checkpoint keys: the
// characters of a DNS name kept, anything else replaced by '_'.
func CheckpointHost() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "unknown-host"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, h)
}

// checkpointPrefix is the folder of a host's checkpoints on a target.
func checkpointPrefix(targetPrefix, host string) string {
	return targetPrefix + CheckpointDir + host + "/"
}

// checkpointKey names a checkpoint object.
func checkpointKey(targetPrefix string, cp journal.Checkpoint) string {
	return fmt.Sprintf("%s%020d-%020d.json", checkpointPrefix(targetPrefix, cp.Host), cp.EventSeq, cp.AuditSeq)
}

// checkpointer takes checkpoints and uploads them to every target, each
// with its own goroutine-free state: a target that failed keeps the latest
// checkpoint pending and gets it at the next attempt (the next tick or
// completed batch). It never holds up uploads: it runs on its own and
// calls the sinks directly, each call bounded by checkpointTimeout.
type checkpointer struct {
	j *journal.Journal
	// targets gives the targets now (a configuration reload may change
	// them): their sinks and prefixes, by target name.
	targets  func() (sinks map[string]sink.Sink, prefixes map[string]string)
	host     string
	version  string
	interval time.Duration
	retain   time.Duration
	log      *slog.Logger

	cur       journal.Checkpoint
	delivered map[string]journal.Checkpoint // the last checkpoint each target got
	failing   map[string]string
	last      time.Time // when the last checkpoint was attempted
	now       func() time.Time
	done      chan struct{} // closed when run returns
}

func newCheckpointer(cfg *config.Config, j *journal.Journal, sinks map[string]sink.Sink, version string, log *slog.Logger) *checkpointer {
	prefixes := targetPrefixes(cfg)
	return &checkpointer{j: j, targets: func() (map[string]sink.Sink, map[string]string) { return sinks, prefixes },
		host: CheckpointHost(), version: version,
		interval: time.Duration(cfg.Journal.CheckpointInterval), retain: time.Duration(cfg.Journal.CheckpointRetention),
		log: log, delivered: map[string]journal.Checkpoint{}, failing: map[string]string{}, done: make(chan struct{}), now: time.Now}
}

// run takes a checkpoint at once (with atStart), then every interval and
// after completed batches (debounced: at most one a minute), until ctx
// ends; final takes the one at stop.
func (c *checkpointer) run(ctx context.Context, atStart bool) {
	defer close(c.done)
	batches := c.j.BatchCompleted()
	c.last = c.now() // completed batches wait a gap from the start too
	if atStart {
		c.take(ctx)
	}
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	var debounce *time.Timer
	var fire <-chan time.Time
	defer func() {
		if debounce != nil {
			debounce.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.take(ctx)
		case <-batches:
			if fire != nil {
				continue // one is already due at the end of the gap
			}
			if wait := checkpointGap - c.now().Sub(c.last); wait > 0 {
				debounce = time.NewTimer(wait)
				fire = debounce.C
				continue
			}
			c.take(ctx)
		case <-fire:
			fire = nil
			c.take(ctx)
		}
	}
}

// take records a checkpoint (the last one again when nothing changed) and
// sends it to the targets that lack it.
func (c *checkpointer) take(ctx context.Context) {
	if c.record(ctx) {
		c.upload(ctx)
	}
}

// record records a checkpoint in the journal (the last one again when
// nothing changed) and makes it the current one; false when it could not.
func (c *checkpointer) record(ctx context.Context) bool {
	c.last = c.now()
	cp, err := c.j.Checkpoint(ctx, c.host, c.version)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("cannot take a checkpoint", "error", err.Error())
		}
		return false
	}
	if cp != c.cur {
		c.cur = cp
		c.log.Info("checkpoint", "event_seq", cp.EventSeq, "event_hash", cp.EventHash, "audit_seq", cp.AuditSeq, "audit_hash", cp.AuditHash,
			"checkpoint_time", cp.Time.Format(time.RFC3339Nano), "host", cp.Host, "journal_id", cp.JournalID, "version", cp.FerryVersion)
	}
	return true
}

// upload sends the current checkpoint to every target that lacks it.
func (c *checkpointer) upload(ctx context.Context) {
	sinks, prefixes := c.targets()
	names := make([]string, 0, len(sinks))
	for name := range sinks {
		if c.delivered[name] != c.cur {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	body, err := json.Marshal(c.cur)
	if err != nil {
		c.log.Error("cannot encode the checkpoint", "error", err.Error())
		return
	}
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	for _, name := range names {
		key := checkpointKey(prefixes[name], c.cur)
		locked, err := c.put(ctx, sinks[name], key, body, sum)
		if errors.Is(err, sink.ErrExists) {
			err = nil // an earlier attempt landed
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if c.failing[name] != err.Error() {
				c.log.Warn("cannot upload the checkpoint; trying again at the next checkpoint", "target", name, "key", key, "error", err.Error())
			}
			c.failing[name] = err.Error()
			continue
		}
		c.delivered[name] = c.cur
		if _, was := c.failing[name]; was {
			delete(c.failing, name)
			c.log.Info("checkpoint uploaded again after failures", "target", name, "key", key)
		}
		c.log.Debug("checkpoint uploaded", "target", name, "key", key, "object_lock", locked)
	}
}

func (c *checkpointer) put(ctx context.Context, s sink.Sink, key string, body []byte, sum sink.Digest) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	// Under Object Lock retention where the target can (s3sink on a
	// bucket with Object Lock); through the decorators either way.
	return sink.PutRetained(ctx, s, key, body, sum, true, c.now().Add(c.retain))
}

// latestCheckpoint reads the latest checkpoint this host uploaded to a
// target; ok is false when there is none.
func latestCheckpoint(ctx context.Context, s sink.Sink, targetPrefix, host string) (cp journal.Checkpoint, key string, ok bool, err error) {
	keys, err := s.List(ctx, checkpointPrefix(targetPrefix, host))
	if err != nil {
		return cp, "", false, err
	}
	for i := len(keys) - 1; i >= 0; i-- {
		if strings.HasSuffix(keys[i], ".json") {
			key = keys[i]
			break
		}
	}
	if key == "" {
		return cp, "", false, nil
	}
	b, err := s.Get(ctx, key, maxCheckpointSize)
	if err != nil {
		return cp, key, false, err
	}
	if err := json.Unmarshal(b, &cp); err != nil || cp.Format != journal.CheckpointFormat {
		return cp, key, false, fmt.Errorf("%s is not a ferry checkpoint (%s)", key, journal.CheckpointFormat)
	}
	return cp, key, true, nil
}

// finalCheckpointTimeout bounds the checkpoint a stopping daemon takes.
const finalCheckpointTimeout = 3 * time.Second

// final waits for run to return, then takes a last checkpoint, so that
// the tail at stop is anchored too. The journal records it within
// finalCheckpointTimeout; its upload has until deadline (a stop's budget is
// shared with the uploader): a target that cannot take it by then gets the
// next one after the restart.
func (c *checkpointer) final(deadline time.Time) {
	<-c.done
	ctx, cancel := context.WithTimeout(context.Background(), finalCheckpointTimeout)
	defer cancel()
	if !c.record(ctx) {
		return
	}
	uctx, ucancel := context.WithDeadline(ctx, deadline)
	defer ucancel()
	c.upload(uctx)
}

// targetPrefixes are the targets' prefixes, by target name.
func targetPrefixes(cfg *config.Config) map[string]string {
	prefixes := make(map[string]string, len(cfg.Target))
	for name, t := range cfg.Target {
		prefixes[name] = t.Prefix
	}
	return prefixes
}

// VerifyAgainstTargets compares the journal with the latest checkpoint
// this host uploaded to each target of cfg, in name order, and returns how
// many it compared: a chain shorter than a checkpoint (its tail was cut) or
// different at the checkpoint's seq fails, naming the seq. A target
// without a checkpoint, or out of reach, fails too: it proves nothing.
func VerifyAgainstTargets(ctx context.Context, j *journal.Journal, cfg *config.Config) (int, error) {
	host := CheckpointHost()
	names := slices.Sorted(maps.Keys(cfg.Target))
	for _, name := range names {
		t := cfg.Target[name]
		tg, err := newTarget(name, t, cfg.Upload, nil, nil, nil, nil)
		if err != nil {
			return 0, fmt.Errorf("target %s: %v", name, err)
		}
		s := tg.Sink()
		cp, key, ok, err := latestCheckpoint(ctx, s, t.Prefix, host)
		switch {
		case err != nil:
			return 0, fmt.Errorf("target %s: cannot read its checkpoints: %v", name, err)
		case !ok:
			return 0, fmt.Errorf("target %s: no checkpoint of host %s under %s: nothing to compare with (the daemon uploads one at start)",
				name, host, strings.TrimSuffix(checkpointPrefix(t.Prefix, host), "/"))
		}
		if err := j.MatchCheckpoint(ctx, cp); err != nil {
			return 0, fmt.Errorf("%s: NOT intact against target %s (checkpoint %s): %v", j.Path(), name, key, err)
		}
	}
	return len(names), nil
}
