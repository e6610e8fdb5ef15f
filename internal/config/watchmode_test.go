package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestWatchModeKeys: mode defaults to auto and poll_interval to 10 s; both
// are applied as written, recorded in Settings, and a bad value is an
// error at its line.
func TestWatchModeKeys(t *testing.T) {
	c, err := loadText(t, datasetBase, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Watch[0]; w.Mode != "auto" || time.Duration(w.PollInterval) != 10*time.Second {
		t.Fatalf("defaults: mode %q, poll_interval %s", w.Mode, time.Duration(w.PollInterval))
	}
	c, err = loadText(t, datasetBase+"mode = \"poll\"\npoll_interval = \"1m\"\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Watch[0]
	if w.Mode != "poll" || time.Duration(w.PollInterval) != time.Minute {
		t.Fatalf("written: mode %q, poll_interval %s", w.Mode, time.Duration(w.PollInterval))
	}
	if s := c.Settings(); s["watch["+w.Path+"].mode"] != "poll" || s["watch["+w.Path+"].poll_interval"] != "1m0s" {
		t.Fatalf("settings: mode %q, poll_interval %q", s["watch["+w.Path+"].mode"], s["watch["+w.Path+"].poll_interval"])
	}
	for _, c := range []struct{ body, want string }{
		{"mode = \"inotify\"\n", `:9: watch[1].mode: must be one of "auto", "events", "poll" (got "inotify")`},
		{"mode = \"\"\n", `:9: watch[1].mode: must be one of`},
		{"poll_interval = \"0s\"\n", ":9: watch[1].poll_interval: must be between 1s and 1h0m0s (got 0; leave the key out for the default, 10s)"},
		{"poll_interval = \"100ms\"\n", ":9: watch[1].poll_interval: must be between 1s and 1h0m0s (got 100ms)"},
		{"poll_interval = \"25h\"\n", ":9: watch[1].poll_interval: must be between 1s and 1h0m0s (got 25h0m0s)"},
	} {
		_, err := loadText(t, datasetBase+c.body, nil)
		var es Errors
		if !errors.As(err, &es) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %s", c.body, err, c.want)
		}
	}
}
