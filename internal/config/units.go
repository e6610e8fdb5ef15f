package config

import (
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Secret holds a credential; it never prints.
type Secret string

func (Secret) String() string               { return "[redacted]" }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (Secret) GoString() string             { return "[redacted]" }
func (s Secret) Reveal() string             { return string(s) }
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Size is a byte count written as an integer or as "16MiB", "512 KiB",
// "1GiB", "5MB".
type Size int64

var sizeRE = regexp.MustCompile(`^\s*([0-9]+)\s*([A-Za-z]*)\s*$`)

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
}

// ParseSize parses a size such as "16MiB".
func ParseSize(s string) (Size, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size %q (use a number of bytes or units KiB, MiB, GiB)", s)
	}
	unit, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB)", s, m[2])
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > (1<<62)/unit {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(n * unit), nil
}

// UnmarshalTOML accepts an integer or a string with a unit.
func (z *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("invalid size %d: negative", v)
		}
		*z = Size(v)
		return nil
	case string:
		s, err := ParseSize(v)
		*z = s
		return err
	}
	return fmt.Errorf("invalid size %v: want a string such as \"16MiB\" or a number of bytes", v)
}

func (z Size) String() string {
	for _, u := range []struct {
		n    int64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if int64(z) >= u.n && int64(z)%u.n == 0 {
			return fmt.Sprintf("%d%s", int64(z)/u.n, u.name)
		}
	}
	return fmt.Sprintf("%dB", int64(z))
}

// Rate is a byte rate written as "20MiB/s" (or a size, meant per second);
// 0 means no limit.
type Rate int64

// ParseRate parses a rate such as "20MiB/s" (or "20MiB", meant per second).
func ParseRate(s string) (Rate, error) {
	var r Rate
	return r, r.UnmarshalTOML(s)
}

// UnmarshalTOML accepts "20MiB/s", "20MiB", or a number of bytes per second.
func (r *Rate) UnmarshalTOML(v any) error {
	if s, ok := v.(string); ok {
		v = strings.TrimSuffix(strings.TrimSpace(s), "/s")
	}
	var z Size
	if err := z.UnmarshalTOML(v); err != nil {
		return fmt.Errorf("invalid rate %v: want a size per second such as \"20MiB/s\"", v)
	}
	*r = Rate(z)
	return nil
}

func (r Rate) String() string { return Size(r).String() + "/s" }

// Duration is a time.Duration written as "30s", "10m", "1h30m".
type Duration time.Duration

// ParseDuration parses a duration such as "30s" (Go's syntax).
func ParseDuration(s string) (Duration, error) {
	var d Duration
	return d, d.UnmarshalTOML(s)
}

// UnmarshalTOML accepts a Go duration string.
func (d *Duration) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("invalid duration %v: want a string such as \"30s\" or \"10m\"", v)
	}
	x, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (use units such as 500ms, 30s, 10m, 1h)", s)
	}
	*d = Duration(x)
	return nil
}
