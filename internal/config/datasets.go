package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/ferry-data/ferry/dataset"
	"github.com/ferry-data/ferry/notify"
)

// StringList is a key written as one string or as a list of strings
// (`complete = "illumina"` or `complete = ["marker:.done", "quiet:2h"]`).
type StringList []string

// UnmarshalTOML accepts a string or an array of strings.
func (l *StringList) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*l = StringList{v}
		return nil
	case []any:
		out := make(StringList, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("invalid list: %v is not a string", e)
			}
			out = append(out, s)
		}
		*l = out
		return nil
	}
	return fmt.Errorf("invalid value %v: want a string or a list of strings", v)
}

// The values of after_upload this version carries out: keep (the
// default) and delete. move:DIR and reclaim are refused by name: ferry
// refuses a setting it would not carry out rather than accept it and do
// nothing.
const (
	AfterUploadKeep    = "keep"
	AfterUploadDelete  = "delete"
	AfterUploadReclaim = "reclaim"
)

// The values of verify_before_delete: how the target's copy is checked
// before a source file goes. head: its size and sha256 metadata
// (HeadObject); readback: the whole object read back and hashed.
const (
	VerifyHead     = "head"
	VerifyReadback = "readback"
)

// DefaultReclaimFreeBelow is reclaim_free_below when left out: below 15%
// free, a volume of a few TB still has hundreds of GB, a day or more of
// most instruments' output, while ferry frees the oldest runs.
const DefaultReclaimFreeBelow = "15%"

// ReclaimPercent is reclaim_free_below as a number (15 for "15%").
func (w WatchConfig) ReclaimPercent() float64 {
	p, _ := parsePercent(w.ReclaimFreeBelow)
	return p
}

// Deletes reports whether the watch takes source files away once their
// dataset closed (delete, reclaim or move:DIR).
func (w WatchConfig) Deletes() bool {
	return w.AfterUpload == AfterUploadDelete || w.AfterUpload == AfterUploadReclaim || w.moveDir != ""
}

// MoveDir is the folder of after_upload = "move:DIR", resolved ("" for
// the other values).
func (w WatchConfig) MoveDir() string { return w.moveDir }

func parsePercent(s string) (float64, error) {
	v, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("want a percentage such as \"15%%\" (got %q)", s)
	}
	if f < 1 || f > 99 {
		return 0, fmt.Errorf("must be between 1%% and 99%% (got %q)", s)
	}
	return f, nil
}

// Conditions are the watch's parsed completion conditions (nil without
// datasets).
func (w WatchConfig) Conditions() dataset.Conditions { return w.conditions }

// Depth is how many folder levels deep the watch's datasets are (0: no
// datasets).
func (w WatchConfig) Depth() int {
	if w.Dataset == "" {
		return 0
	}
	return strings.Count(w.Dataset, "/") + 1
}

// DatasetOf returns the dataset a file (its path relative to the watch
// root) belongs to: the folder at the pattern's depth, when the pattern
// matches it; "" when the file is in no dataset (the watch has none, the
// file sits above the datasets' depth, or its folder does not match).
func (w WatchConfig) DatasetOf(rel string) string {
	n := w.Depth()
	if n == 0 {
		return ""
	}
	segs := strings.SplitN(rel, "/", n+1)
	if len(segs) <= n {
		return ""
	}
	folder := strings.Join(segs[:n], "/")
	if ok, _ := doublestar.Match(w.Dataset, folder); !ok {
		return ""
	}
	return folder
}

// validateDataset checks the dataset keys of a [[watch]]; resolve makes
// a path of the file absolute.
func (w *WatchConfig) validateDataset(v *checker, tbl string, line func(string) int, resolve func(string) string) {
	if w.Dataset == "" {
		for _, k := range []struct {
			key string
			set bool
		}{{"complete", len(w.Complete) > 0}, {"license", w.License != ""}, {"after_upload", w.AfterUpload != ""}, {"reclaim_free_below", w.ReclaimFreeBelow != ""},
			{"verify_before_delete", w.VerifyBeforeDelete != ""}} {
			if k.set {
				v.bad(line(k.key), tbl+"."+k.key, "applies only to a watch with datasets: set dataset (e.g. dataset = \"*\")")
			}
		}
		return
	}
	switch {
	case strings.Contains(w.Dataset, `\`):
		v.bad(line("dataset"), tbl+".dataset", "write the pattern with / (got %q)", w.Dataset)
	case strings.Contains(w.Dataset, "**"):
		v.bad(line("dataset"), tbl+".dataset", "a dataset is a folder at a fixed depth: use * per level, not ** (got %q)", w.Dataset)
	case strings.HasPrefix(w.Dataset, "/") || path.Clean(w.Dataset) != w.Dataset || strings.HasPrefix(w.Dataset, "..") || !doublestar.ValidatePattern(w.Dataset):
		v.bad(line("dataset"), tbl+".dataset", "must be a relative folder pattern such as \"*\" or \"*/*\" (got %q)", w.Dataset)
	}
	if len(w.Complete) == 0 {
		v.bad(line("dataset"), tbl+".complete", "required with dataset: when is a dataset complete? (\"illumina\", \"marker:NAME\", \"quiet:DURATION\", or a list)")
	} else if cs, err := dataset.ParseConditions(w.Complete); err != nil {
		v.bad(line("complete"), tbl+".complete", "%v", err)
	} else {
		w.conditions = cs
	}
	if err := dataset.ValidLicense(w.License); err != nil {
		v.bad(line("license"), tbl+".license", "%v", err)
	} else if w.License == "" {
		w.License = dataset.DefaultLicense
	}
	switch w.AfterUpload {
	case "":
		w.AfterUpload = AfterUploadKeep
	case AfterUploadKeep, AfterUploadDelete, AfterUploadReclaim:
	default:
		if dir, ok := strings.CutPrefix(w.AfterUpload, "move:"); ok && strings.TrimSpace(dir) != "" {
			w.moveDir = filepath.Clean(resolve(strings.TrimSpace(dir)))
		} else if ok {
			v.bad(line("after_upload"), tbl+".after_upload", "move: needs a folder (\"move:DIR\")")
		} else {
			v.bad(line("after_upload"), tbl+".after_upload", "must be \"keep\", \"delete\", \"move:DIR\" or \"reclaim\" (got %q)", w.AfterUpload)
		}
	}
	switch w.VerifyBeforeDelete {
	case "":
		if w.Deletes() {
			w.VerifyBeforeDelete = VerifyHead
		}
	case VerifyHead, VerifyReadback:
		if !w.Deletes() {
			v.bad(line("verify_before_delete"), tbl+".verify_before_delete", "applies only when source files are deleted or moved (after_upload)")
		}
	default:
		v.bad(line("verify_before_delete"), tbl+".verify_before_delete", "must be \"head\" or \"readback\" (got %q)", w.VerifyBeforeDelete)
	}
	switch {
	case w.AfterUpload != AfterUploadReclaim && w.ReclaimFreeBelow != "":
		v.bad(line("reclaim_free_below"), tbl+".reclaim_free_below", "applies only with after_upload = \"reclaim\"")
	case w.AfterUpload == AfterUploadReclaim && w.ReclaimFreeBelow == "":
		w.ReclaimFreeBelow = DefaultReclaimFreeBelow
	case w.AfterUpload == AfterUploadReclaim:
		if _, err := parsePercent(w.ReclaimFreeBelow); err != nil {
			v.bad(line("reclaim_free_below"), tbl+".reclaim_free_below", "%v", err)
		}
	}
}

// NotifyConfig is one [[notify]]: an endpoint told of dataset and file
// events.
type NotifyConfig struct {
	URL    NotifyURL `toml:"url"`
	Events []string  `toml:"events"`
	// SecretEnv names the environment variable holding the HMAC secret
	// (the TOML never holds it).
	SecretEnv string `toml:"secret_env"`

	// secret is a pointer so that printing a NotifyConfig (%v, %+v, %#v)
	// shows an address, never the value.
	secret *Secret
}

// NotifyURL is a [[notify]] url. It prints (and reaches the audit log's
// settings) without its query or credentials, where tokens live; the
// sender uses Reveal.
type NotifyURL string

func (u NotifyURL) String() string   { return notify.Redact(string(u)) }
func (u NotifyURL) Reveal() string   { return string(u) }
func (u NotifyURL) GoString() string { return strconv.Quote(u.String()) }

// Secret is the HMAC-SHA256 key read from SecretEnv ("" when unsigned).
func (n NotifyConfig) Secret() Secret {
	if n.secret == nil {
		return ""
	}
	return *n.secret
}

// ID identifies the endpoint in the journal without its secrets: its URL
// without query or credentials, and the first 12 hex digits of the whole
// URL's SHA-256 (two URLs that differ only in a token are two endpoints).
func (n NotifyConfig) ID() string {
	s := sha256.Sum256([]byte(n.URL))
	return n.URL.String() + " #" + hex.EncodeToString(s[:6])
}

// Wants reports whether the endpoint asked for event.
func (n NotifyConfig) Wants(event string) bool {
	for _, e := range n.Events {
		if e == event {
			return true
		}
	}
	return false
}

// validateNotify checks every [[notify]] and reads its secret.
func (c *Config) validateNotify(v *checker, lookupEnv func(string) (string, bool)) {
	for i := range c.Notify {
		n := &c.Notify[i]
		tbl := fmt.Sprintf("notify[%d]", i+1)
		line := func(k string) int { return v.loc.arrayLine("notify", i, k) }
		if n.URL == "" {
			v.bad(line(""), tbl+".url", "required: where to POST the events")
		} else if err := notify.CheckURL(n.URL.Reveal()); err != nil {
			v.bad(line("url"), tbl+".url", "%v", err)
		}
		if len(n.Events) == 0 {
			n.Events = append([]string(nil), notify.Events...)
		}
		for _, e := range n.Events {
			if !notify.Known(e) {
				v.bad(line("events"), tbl+".events", "unknown event %q (events: %s)", e, strings.Join(notify.Events, ", "))
			}
		}
		if n.SecretEnv != "" {
			value, ok := lookupEnv(n.SecretEnv)
			if !ok || value == "" {
				v.bad(line("secret_env"), tbl+".secret_env", "environment variable %s is not set (it must hold the signing secret; the TOML only names it)", n.SecretEnv)
			}
			sv := Secret(value)
			n.secret = &sv
		}
	}
}

// validateMoves refuses a move:DIR folder inside a watched folder (the
// moved files would be taken again) or that a watch sits in.
func (c *Config) validateMoves(v *checker) {
	for i, w := range c.Watch {
		if w.moveDir == "" {
			continue
		}
		dir := canonical(w.moveDir)
		for _, o := range c.Watch {
			root := canonical(o.Path)
			if within(dir, root) || within(root, dir) {
				v.bad(v.loc.arrayLine("watch", i, "after_upload"), fmt.Sprintf("watch[%d].after_upload", i+1),
					"the folder %s and the watched folder %s overlap: moved files would be watched again", w.moveDir, root)
				break
			}
		}
	}
}
