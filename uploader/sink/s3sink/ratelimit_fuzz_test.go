package s3sink

import (
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The headers a server uses to ask ferry to slow down are untrusted text:
// whatever they hold, the pause ferry takes must be between zero and a
// day, and the well-formed ones must mean what RFC 9110 (Retry-After) and
// the common X-RateLimit-* convention say they mean.

// fuzzNow is the clock of a fuzz case: any instant time.Unix(0, n) can
// hold (1677 to 2262), so that dates far from now are covered too.
func fuzzNow(n int64) time.Time { return time.Unix(0, n).UTC() }

// rfcHTTPDate is an independent reading of an HTTP-date (RFC 9110 section
// 5.6.7): IMF-fixdate, the obsolete RFC 850 form, or asctime, always GMT;
// a two-digit year more than 50 years ahead of now is the most recent past
// year with those digits.
func rfcHTTPDate(v string, now time.Time) (time.Time, bool) {
	if t, err := time.Parse("Mon, 02 Jan 2006 15:04:05 GMT", v); err == nil {
		return t, true
	}
	if t, err := time.Parse("Monday, 02-Jan-06 15:04:05 GMT", v); err == nil {
		// The one year with those last digits among the 100 that end
		// 50 years from now.
		y := now.Year() - 49
		for y%100 != t.Year()%100 {
			y++
		}
		return time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC), true
	}
	if t, err := time.Parse("Mon Jan _2 15:04:05 2006", v); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// wantRetryAfter is what parseRetryAfter must return, computed another
// way (delta-seconds with big integers).
func wantRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" {
		n, _ := new(big.Int).SetString(v, 10)
		if n.Cmp(big.NewInt(int64(maxRetryAfter/time.Second))) > 0 {
			return maxRetryAfter
		}
		return time.Duration(n.Int64()) * time.Second
	}
	t, ok := rfcHTTPDate(v, now)
	if !ok || !t.After(now) {
		return 0
	}
	if t.Sub(now) > maxRetryAfter {
		return maxRetryAfter
	}
	return t.Sub(now)
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixNano()
	for _, v := range []string{
		"", " ", "0", "5", " 120 ", "007", "86400", "86401",
		"18446744073709551615", "18446744073709551616", "99999999999999999999999",
		"-1", "-0", "+5", "1.5", "5s", "1e3", "0x10", "NaN", "Inf", "-Inf", "soon", "\u0661\u0662", "5\x00",
		"Thu, 26 Nov 2026 12:00:30 GMT", "Thursday, 26-Nov-26 12:01:00 GMT", "Thu Nov 26 12:00:10 2026",
		"Thu, 26 Nov 2026 11:59:00 GMT", "Sat, 28 Nov 2026 12:00:00 GMT", "Thu, 26 Nov 2026 12:00:30 +0000",
		"Thursday, 26-Nov-26 12:01:00 CET", "Thursday, 26-Nov-26 12:01:00 PST", "Thursday, 26-Nov-26 12:01:00 UTC",
		"Thursday, 26-Nov-69 12:01:00 GMT", "Thursday, 26-Nov-76 12:01:00 GMT", "Thursday, 26-Nov-25 12:01:00 GMT",
		"Thu, 26 Nov 9999 23:59:59 GMT", "Thu, 01 Jan 0000 00:00:00 GMT", "Thu, 30 Feb 2026 12:00:00 GMT",
		"Thu, 26 Nov 2026 12:00:30.999999999 GMT", "Thu, 26 Nov 2026 24:00:00 GMT",
	} {
		f.Add(v, now)
	}
	f.Add("Thu, 01 Jan 1970 00:00:01 GMT", int64(0))
	f.Add("Fri, 11 Apr 2262 23:47:16 GMT", int64(-1<<63))
	f.Add("Mon, 21 Sep 1677 00:12:44 GMT", int64(1<<63-1))
	f.Fuzz(func(t *testing.T, v string, n int64) {
		now := fuzzNow(n)
		got := parseRetryAfter(v, now)
		if got < 0 || got > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q, %v) = %v, outside [0, %v]", v, now, got, maxRetryAfter)
		}
		if want := wantRetryAfter(v, now); got != want {
			t.Fatalf("parseRetryAfter(%q, %v) = %v, want %v", v, now, got, want)
		}
	})
}

func FuzzParseRateLimit(f *testing.F) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixNano()
	for _, c := range [][2]string{
		{"10", "30"}, {"0", "30"}, {"0", "0"}, {"5", "999999"}, {"5", "1000000000"}, {"5", "1000000001"},
		{"0", "1795694460"}, {"0", "1795694340"}, {"0", "1795694400"}, // Unix seconds: a minute ahead, a minute ago, now
		{"", "30"}, {"x", "30"}, {"3", ""}, {"-1", "30"}, {"3", "-30"}, {" 7 ", " 12 "}, {"+3", "+30"},
		{"NaN", "NaN"}, {"1e3", "1e3"}, {"3", "30.5"}, {"3", "0x1e"},
		{"9223372036854775807", "9223372036854775807"}, {"9223372036854775808", "30"}, {"3", "9223372036854775808"},
		{"3", "-9223372036854775808"}, {"3", "9999999999"}, {"3", "99999999999999"},
	} {
		f.Add(c[0], c[1], now)
	}
	f.Add("0", "30", int64(1<<63-1))
	f.Add("0", "30", int64(-1<<63))
	f.Add("0", "9223372036854775807", int64(-1<<63))
	f.Fuzz(func(t *testing.T, rem, reset string, n int64) {
		now := fuzzNow(n)
		h := http.Header{}
		h.Set("X-RateLimit-Remaining", rem)
		h.Set("X-RateLimit-Reset", reset)
		rl, ok := parseRateLimit(h, now)

		r, rerr := strconv.Atoi(strings.TrimSpace(rem))
		s, serr := strconv.ParseInt(strings.TrimSpace(reset), 10, 64)
		if wantOK := rerr == nil && r >= 0 && serr == nil && s >= 0; ok != wantOK {
			t.Fatalf("parseRateLimit(%q, %q) ok = %v, want %v", rem, reset, ok, wantOK)
		}
		if !ok {
			if rl.Remaining != 0 || !rl.Reset.IsZero() {
				t.Fatalf("parseRateLimit(%q, %q) = %+v with ok false", rem, reset, rl)
			}
			return
		}
		if rl.Remaining != r {
			t.Fatalf("parseRateLimit(%q, %q).Remaining = %d, want %d", rem, reset, rl.Remaining, r)
		}
		// The pause the gate takes is Reset - now, nothing when that is
		// not positive: never more than a day.
		if pause := rl.Reset.Sub(now); pause > 24*time.Hour {
			t.Fatalf("parseRateLimit(%q, %q) at %v: reset in %v, more than a day", rem, reset, now, pause)
		}
		// Delta-seconds up to 10^9 (about 31 years), Unix seconds above.
		want := now.Add(time.Duration(min(s, 86400)) * time.Second)
		if s > 1_000_000_000 {
			want = time.Unix(s, 0)
			if !want.Before(now) && want.Sub(now) > 24*time.Hour {
				want = now.Add(24 * time.Hour)
			}
		}
		if !rl.Reset.Equal(want) {
			t.Fatalf("parseRateLimit(%q, %q) at %v: reset %v, want %v", rem, reset, now, rl.Reset, want)
		}
		// A reset in the past means no pause at all.
		if s > 1_000_000_000 && !time.Unix(s, 0).After(now) && rl.Reset.After(now) {
			t.Fatalf("parseRateLimit(%q, %q) at %v: a past reset gives a pause until %v", rem, reset, now, rl.Reset)
		}
	})
}
