// Package notify delivers one event to one [[notify]] endpoint: the body,
// its signature, the idempotency key, and what the answer means. The outbox
// (which events are owed to whom, and when to try again) is the journal's;
// this package only makes one attempt and says how it went.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The events a [[notify]] section may ask for (the `events` key).
const (
	DatasetComplete = "dataset_complete"
	DatasetFailed   = "dataset_failed"
	FileFailed      = "file_failed"
)

// Events lists them, for validation and help.
var Events = []string{DatasetComplete, DatasetFailed, FileFailed}

// Known reports whether name is an event ferry sends.
func Known(name string) bool {
	for _, e := range Events {
		if e == name {
			return true
		}
	}
	return false
}

// Headers sent with every delivery.
const (
	// HeaderIdempotency carries the event's id, the same on every attempt:
	// receivers drop an id they have seen (delivery is at-least-once).
	HeaderIdempotency = "Idempotency-Key"
	HeaderEvent       = "X-Ferry-Event"
	HeaderDelivery    = "X-Ferry-Delivery" // attempt number, from 1
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body under
	// the endpoint's secret; absent when the endpoint has none.
	HeaderSignature = "X-Ferry-Signature"
)

// Event is one notification. Its ID is stable across attempts and restarts
// (the journal stores it with the event), and is also in the body.
type Event struct {
	ID   string
	Type string
	Time time.Time
	Data any
}

// Body is the JSON sent: {"id", "type", "time", "data"}.
func Body(e Event) ([]byte, error) {
	if e.ID == "" || e.Type == "" {
		return nil, errors.New("notify: an event needs an id and a type")
	}
	return json.Marshal(struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Time string `json:"time"`
		Data any    `json:"data,omitempty"`
	}{e.ID, e.Type, e.Time.UTC().Format(time.RFC3339Nano), e.Data})
}

// Sign is the signature header's value for a body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify is what a receiver does: constant-time comparison of the header
// against the body's HMAC. ferry's tests use it as a receiver would.
func Verify(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(Sign(secret, body)))
}

// Result is how one attempt went.
type Result struct {
	// Acked: the endpoint answered 2xx; the event is delivered.
	Acked  bool
	Status int // HTTP status, 0 when none came
	// Err says what went wrong, without the URL's secrets.
	Err error
	// RetryAfter is the endpoint's Retry-After, when it gave one (capped).
	RetryAfter time.Duration
}

// MaxRetryAfter caps a Retry-After the endpoint asks for.
const MaxRetryAfter = time.Hour

// maxAnswer bounds what is read of an answer (to reuse the connection and
// quote an error).
const maxAnswer = 4 << 10

// Send makes one attempt to deliver body (from Body) to endpoint. attempt
// counts from 1. secret may be nil (no signature). The client's timeout,
// or ctx's deadline, bounds the attempt.
func Send(ctx context.Context, c *http.Client, endpoint string, secret []byte, e Event, body []byte, attempt int, userAgent string) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return Result{Err: fmt.Errorf("notify %s: %v", Redact(endpoint), scrub(err, endpoint))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderIdempotency, e.ID)
	req.Header.Set(HeaderEvent, e.Type)
	req.Header.Set(HeaderDelivery, strconv.Itoa(attempt))
	if userAgent != "" {
		req.Header.Set("User-Agent", userAgent)
	}
	if len(secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(secret, body))
	}
	resp, err := c.Do(req)
	if err != nil {
		return Result{Err: fmt.Errorf("notify %s: %v", Redact(endpoint), scrub(err, endpoint))}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	r := Result{Status: resp.StatusCode}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		r.Acked = true
		return r
	}
	r.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	msg := strings.Join(strings.Fields(string(answer)), " ")
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg != "" {
		msg = ": " + msg
	}
	r.Err = fmt.Errorf("notify %s: answered %s%s", Redact(endpoint), resp.Status, msg)
	return r
}

func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, MaxRetryAfter)
}

// Redact is an endpoint as logs, status and the journal may show it:
// scheme, host and path; never user info, query or fragment, where tokens
// live.
func Redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "(unparsable notify url)"
	}
	s := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		s += " (query and credentials hidden)"
	}
	return s
}

// scrub removes the full URL from an error (net/http quotes it, query and
// all) in favour of the redacted one.
func scrub(err error, endpoint string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return strings.ReplaceAll(err.Error(), endpoint, Redact(endpoint))
}

// CheckURL validates a [[notify]] url: http or https with a host. Plain http
// is allowed (a LIMS on the facility's own network) but not with
// credentials in it.
func CheckURL(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("use an http:// or https:// URL")
	}
	if u.Host == "" {
		return fmt.Errorf("the URL has no host")
	}
	if u.User != nil {
		return fmt.Errorf("credentials in the URL: sign deliveries with secret_env instead")
	}
	return nil
}

// Backoff is the wait before the next attempt after failed failed ones:
// 10 s, doubling, at most an hour; a longer Retry-After from the endpoint
// wins. Deliveries go on until acknowledged: a receiver down for a week
// gets the event when it is back, within the hour.
func Backoff(failed int, r Result) time.Duration {
	d := 10 * time.Second
	for i := 1; i < failed && d < time.Hour; i++ {
		d *= 2
	}
	d = min(d, time.Hour)
	return max(d, r.RetryAfter)
}
