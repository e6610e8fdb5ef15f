package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/watcher"
)

// statusTimeout bounds the question to the running daemon.
const statusTimeout = 2 * time.Second

func (a *app) statusCmd() *cobra.Command {
	var asJSON bool
	c := a.configVerb(&cobra.Command{
		Use:   "status",
		Short: "Show the queue, the uploads in flight, rate and ETA, breakers and the last error",
		Long: `Ask the running daemon ([metrics] listen, /status, 2 s timeout) or, when none
answers, read the journal (read-only: what only the daemon knows is then
unknown, null in --json). Exit 0 with a status, 1 when none could be read.`,
		Example: `  ferry status --config /etc/ferry/ferry.toml
  ferry status --json | jq .queue_files`,
	}, func(ctx context.Context, path string) int { return a.status(ctx, path, asJSON) })
	c.Flags().BoolVar(&asJSON, "json", false, "print the status as one JSON object (the shape of the daemon's /status)")
	return c
}

// status prints the status of the ferry configured at path.
func (a *app) status(ctx context.Context, path string, asJSON bool) int {
	// Status reads no target: the credentials the targets name need not be
	// in this shell's environment.
	cfg, code := loadConfig(path, func(string) (string, bool) { return "unused", true }, a.stderr)
	if cfg == nil {
		return code
	}
	st, note, err := readStatus(ctx, cfg)
	if err != nil {
		fmt.Fprintf(a.stderr, "ferry status: %v\n", err)
		return exitFailed
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return exitOK
	}
	writeStatus(a.stdout, st, note, time.Now())
	return exitOK
}

// readStatus asks the daemon, then the journal. note says where the status
// came from, for a person.
func readStatus(ctx context.Context, cfg *config.Config) (daemon.Status, string, error) {
	listen := *cfg.Metrics.Listen
	var why string
	if listen == "" {
		why = "metrics disabled ([metrics] listen = \"\")"
	} else {
		st, err := askDaemon(ctx, listen)
		if err == nil {
			return st, "from the daemon at " + dialAddr(listen), nil
		}
		why = "daemon not running"
		var ne *net.OpError
		if !errors.As(err, &ne) || ne.Op != "dial" {
			why = fmt.Sprintf("no status from the daemon at %s (%v)", dialAddr(listen), err)
		}
	}
	j, err := journal.OpenReadOnly(cfg.Journal.Path)
	if err != nil {
		if errors.Is(err, journal.ErrNoJournal) {
			return daemon.Status{}, "", fmt.Errorf("%s, and no journal at %s (has ferry run with this configuration?)", why, cfg.Journal.Path)
		}
		return daemon.Status{}, "", fmt.Errorf("%s, and the journal cannot be read: %v", why, err)
	}
	defer j.Close()
	st, err := daemon.JournalStatus(ctx, j, time.Now())
	if err != nil {
		return daemon.Status{}, "", fmt.Errorf("%s, and the journal %s cannot be read: %v", why, cfg.Journal.Path, err)
	}
	for _, w := range cfg.Watch {
		st.Watches = append(st.Watches, filepath.Clean(w.Path))
	}
	sort.Strings(st.Watches)
	return st, why + ": from the journal " + cfg.Journal.Path + " (in-flight uploads, rate and breakers unknown)", nil
}

// dialAddr is where to reach a listen address: a wildcard host means this
// machine.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

func askDaemon(ctx context.Context, listen string) (daemon.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+dialAddr(listen)+"/status", nil)
	if err != nil {
		return daemon.Status{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return daemon.Status{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return daemon.Status{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var st daemon.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&st); err != nil {
		return daemon.Status{}, fmt.Errorf("not ferry's status: %v", err)
	}
	if st.Source != "daemon" {
		return daemon.Status{}, errors.New("not ferry's status (no source)")
	}
	return st, nil
}

// writeStatus prints the status for a person, in aligned label: value
// lines, like systemctl status.
func writeStatus(w io.Writer, st daemon.Status, note string, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(label, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", label, fmt.Sprintf(format, args...))
	}
	if st.Source == "daemon" {
		head := st.Version
		if st.StartedAt != nil && st.UptimeSeconds != nil {
			head += fmt.Sprintf(", up %s (since %s)", human(*st.UptimeSeconds), st.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
		}
		line("Daemon:", "%s", head)
	} else {
		line("Daemon:", "not answering")
	}
	line("Source:", "%s", note)
	q := fmt.Sprintf("%d files, %s", st.Queue, iec(st.QueueBytes))
	if st.Queue > 0 {
		q += fmt.Sprintf(", oldest waiting %s", human(st.OldestWait))
	}
	line("Queue:", "%s", q)
	switch {
	case st.Rate == nil:
		line("Rate:", "unknown")
	case st.ETASeconds != nil && st.Queue > 0:
		line("Rate:", "%s/s, queue done in about %s", iec(int64(*st.Rate)), human(*st.ETASeconds))
	default:
		line("Rate:", "%s/s", iec(int64(*st.Rate)))
	}
	var counts []string
	for _, s := range daemon.States {
		counts = append(counts, fmt.Sprintf("%s %d", s, st.States[string(s)]))
	}
	line("Files:", "%s", strings.Join(counts, ", "))
	dl := fmt.Sprintf("%d", st.DeadLetters)
	if st.DeadLetters > 0 {
		dl += " (see ferry dlq list)"
	}
	line("Dead letters:", "%s", dl)
	if st.Held > 0 {
		line("Held:", "%d files of %d datasets, for their metadata (see ferry dlq list)", st.Held, st.HeldDatasets)
	}
	if total := sumCounts(st.Datasets); total > 0 || st.NotificationsPending > 0 {
		var ds []string
		for _, s := range journal.DatasetStates() {
			ds = append(ds, fmt.Sprintf("%s %d", s, st.Datasets[string(s)]))
		}
		line("Datasets:", "%s (see ferry datasets)", strings.Join(ds, ", "))
		n := fmt.Sprintf("%d pending", st.NotificationsPending)
		if st.NotificationsFailing > 0 {
			n += fmt.Sprintf(", %d failing", st.NotificationsFailing)
		}
		line("Notifications:", "%s", n)
		if st.LastNotificationError != nil {
			line("", "last failure: %s", oneLine(*st.LastNotificationError, 160))
		}
		if sd := st.SourceDeletions; sumCounts(sd) > 0 {
			line("Source files:", "%d deleted (%s freed), %d waiting for their checks, %d kept (a check failed)",
				sd["deleted"], iec(st.ReclaimedBytes), sd["pending"], sd["refused"])
		}
	}
	if st.Source == "daemon" {
		line("Uploaded:", "%d files, %s since start", st.Uploaded, iec(st.Bytes))
	}
	if st.Breakers != nil {
		names := make([]string, 0, len(st.Breakers))
		for n := range st.Breakers {
			names = append(names, n)
		}
		sort.Strings(names)
		var bs []string
		for _, n := range names {
			bs = append(bs, fmt.Sprintf("%s (breaker %s)", n, st.Breakers[n]))
		}
		line("Targets:", "%s", strings.Join(bs, ", "))
	}
	if st.WatchStates != nil {
		writeWatchStates(line, st.WatchStates, now)
	} else {
		for i, wa := range st.Watches {
			label := ""
			if i == 0 {
				label = "Watches:"
			}
			line(label, "%s", wa)
		}
	}
	if e := st.LastError; e != nil {
		line("Last error:", "%s (%s ago) %s -> %s", e.Time.UTC().Format("2006-01-02 15:04:05 UTC"), human(now.Sub(e.Time).Seconds()), e.Path, e.Target)
		line("", "%s: %s", e.Class, oneLine(e.Message, 160))
	} else {
		line("Last error:", "none")
	}
	tw.Flush()
	if st.Source != "daemon" {
		return
	}
	if len(st.InFlight) == 0 {
		fmt.Fprintln(w, "In flight:     none")
		return
	}
	fmt.Fprintf(w, "In flight:     %d\n", len(st.InFlight))
	rows := make([][]string, len(st.InFlight))
	for i, f := range st.InFlight {
		left := "-"
		if f.ETASeconds != nil {
			left = human(*f.ETASeconds)
		}
		rows[i] = []string{f.Path + " -> " + f.Target, iec(f.Done), "/ " + iec(f.Size), fmt.Sprintf("%.1f%%", f.Percent), iec(int64(f.Rate)) + "/s", "ETA " + left}
	}
	writeTable(w, "  ", rows)
}

// maxUnreadableShown bounds the unreadable folders status lists per watch
// (--json has them all, up to the daemon's bound).
const maxUnreadableShown = 5

// writeWatchStates prints each watch: up, or down since when and why; the
// folder a symlinked one leads to; the entries not taken, by reason, and
// the folders that could not be read.
func writeWatchStates(line func(label, format string, args ...any), ws []daemon.WatchState, now time.Time) {
	for i, w := range ws {
		label := ""
		if i == 0 {
			label = "Watches:"
		}
		head := w.Path
		if w.Resolved != "" && w.Resolved != w.Path {
			head += " (-> " + w.Resolved + ")"
		}
		switch {
		case w.Up:
			head += "  up"
		case w.Since != nil:
			head += fmt.Sprintf("  DOWN since %s (%s): %s", w.Since.UTC().Format("2006-01-02 15:04:05 UTC"), human(now.Sub(*w.Since).Seconds()), w.Reason)
		default:
			head += "  " + w.Reason
		}
		line(label, "%s", head)
		if w.Mode == string(watcher.ModePoll) {
			// Shown when it polls: a network share, or the inotify watch
			// limit reached (events are the quiet default).
			line("", "  polling (%s): %s", w.Filesystem, w.ModeReason)
		}
		var skipped []string
		for _, r := range []struct{ key, one, many string }{
			{"symlink", "symlink", "symlinks"}, {"special", "FIFO, socket or device", "FIFOs, sockets or devices"}, {"unreadable", "unreadable folder", "unreadable folders"},
		} {
			switch n := w.Skipped[r.key]; n {
			case 0:
			case 1:
				skipped = append(skipped, "1 "+r.one)
			default:
				skipped = append(skipped, fmt.Sprintf("%d %s", n, r.many))
			}
		}
		if len(skipped) > 0 {
			line("", "  not taken: %s", strings.Join(skipped, ", "))
		}
		for j, u := range w.Unreadable {
			if j == maxUnreadableShown {
				line("", "  ... and %d more (ferry status --json)", len(w.Unreadable)-j)
				break
			}
			line("", "  cannot read %s: %s", u.Path, u.Error)
		}
	}
}

// writeTable prints rows with the first column left-aligned and the others
// right-aligned, two spaces apart.
func writeTable(w io.Writer, indent string, rows [][]string) {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

// iec formats a byte count with binary units: 512 B, 1.5 KiB, 12.0 MiB.
func iec(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= 1024
		if v < 1024 || u == "PiB" {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return ""
}

// human formats seconds for a glance: 42s, 4m12s, 2h03m, 3d04h.
func human(sec float64) string {
	s := int64(sec + 0.5)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}

// oneLine keeps a message on one line, at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
