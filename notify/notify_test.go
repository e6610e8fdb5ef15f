package notify

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type delivery struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP server that answers with the statuses given, in
// turn (the last repeats), and records what it got.
func receiver(t *testing.T, statuses ...int) (*httptest.Server, func() []delivery) {
	t.Helper()
	var mu sync.Mutex
	var got []delivery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, delivery{r.Header.Clone(), b})
		n := len(got)
		mu.Unlock()
		st := statuses[min(n, len(statuses))-1]
		if st == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "120")
		}
		w.WriteHeader(st)
		io.WriteString(w, "receiver says\nno  ")
	}))
	t.Cleanup(srv.Close)
	return srv, func() []delivery { mu.Lock(); defer mu.Unlock(); return append([]delivery(nil), got...) }
}

func event() Event {
	return Event{
		ID:   "dataset_complete:illumina:261203_A00123_0042_BHXYZ:1",
		Type: DatasetComplete,
		Time: time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC),
		Data: map[string]any{"dataset": "261203_A00123_0042_BHXYZ", "files": 3},
	}
}

func TestSendSignsAndIsAcked(t *testing.T) {
	srv, got := receiver(t, http.StatusAccepted)
	secret := []byte("s3cret")
	e := event()
	body, err := Body(e)
	if err != nil {
		t.Fatal(err)
	}
	r := Send(context.Background(), srv.Client(), srv.URL+"/hooks/ferry", secret, e, body, 1, "ferry/test")
	if !r.Acked || r.Err != nil || r.Status != 202 {
		t.Fatalf("result %+v", r)
	}
	d := got()
	if len(d) != 1 {
		t.Fatalf("%d deliveries", len(d))
	}
	h := d[0].header
	if !Verify(secret, d[0].body, h.Get(HeaderSignature)) {
		t.Fatalf("signature %q does not verify", h.Get(HeaderSignature))
	}
	if Verify([]byte("other"), d[0].body, h.Get(HeaderSignature)) || Verify(secret, append(d[0].body, ' '), h.Get(HeaderSignature)) {
		t.Fatal("signature verifies under a wrong secret or a changed body")
	}
	if h.Get(HeaderIdempotency) != e.ID || h.Get(HeaderEvent) != DatasetComplete || h.Get(HeaderDelivery) != "1" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", h)
	}
	var b map[string]any
	if err := json.Unmarshal(d[0].body, &b); err != nil || b["id"] != e.ID || b["type"] != DatasetComplete || b["time"] != "2026-12-03T11:00:00Z" {
		t.Fatalf("body %s: %v", d[0].body, err)
	}
}

func TestSendFailuresSayWhyWithoutSecrets(t *testing.T) {
	srv, got := receiver(t, http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusOK)
	e := event()
	body, _ := Body(e)
	url := srv.URL + "/hook?token=TOPSECRET"
	r := Send(context.Background(), srv.Client(), url, nil, e, body, 1, "")
	if r.Acked || r.Status != 500 || r.Err == nil || !strings.Contains(r.Err.Error(), "500") || !strings.Contains(r.Err.Error(), "receiver says no") {
		t.Fatalf("500: %+v", r)
	}
	r = Send(context.Background(), srv.Client(), url, nil, e, body, 2, "")
	if r.Acked || r.RetryAfter != 2*time.Minute {
		t.Fatalf("503 with Retry-After: %+v", r)
	}
	r = Send(context.Background(), srv.Client(), url, nil, e, body, 3, "")
	if !r.Acked {
		t.Fatalf("third attempt: %+v", r)
	}
	for i, d := range got() {
		if d.header.Get(HeaderIdempotency) != e.ID || d.header.Get(HeaderSignature) != "" {
			t.Errorf("attempt %d: headers %v", i+1, d.header)
		}
	}

	// Nobody listening: the error names the endpoint, not its token.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/x?token=TOPSECRET"
	ln.Close()
	r = Send(context.Background(), http.DefaultClient, dead, nil, e, body, 1, "")
	if r.Acked || r.Err == nil || strings.Contains(r.Err.Error(), "TOPSECRET") || !strings.Contains(r.Err.Error(), ln.Addr().String()) {
		t.Fatalf("refused: %+v", r)
	}
	// A receiver that never answers is bounded by the context.
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer hang.Close()
	defer close(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r = Send(ctx, hang.Client(), hang.URL+"?token=TOPSECRET", nil, e, body, 1, "")
	if r.Acked || r.Err == nil || strings.Contains(r.Err.Error(), "TOPSECRET") {
		t.Fatalf("hanging receiver: %+v", r)
	}
}

func TestRedactAndCheckURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://lims.example.org/hooks/ferry": "https://lims.example.org/hooks/ferry",
		"https://lims.example.org/h?token=x":   "https://lims.example.org/h (query and credentials hidden)",
		"https://user:pw@lims.example.org/h":   "https://lims.example.org/h (query and credentials hidden)",
		"::not a url":                          "(unparsable notify url)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "lims.example.org/h", "ftp://x/y", "https://", "https://u:p@x/h"} {
		if err := CheckURL(bad); err == nil {
			t.Errorf("CheckURL(%q) accepted", bad)
		}
	}
	if err := CheckURL("https://u:p@x/h"); err == nil || strings.Contains(err.Error(), "p@") {
		t.Errorf("credentials echoed: %v", err)
	}
	for _, good := range []string{"http://10.0.0.5:8080/hook", "https://lims.example.org/hooks/ferry?site=a"} {
		if err := CheckURL(good); err != nil {
			t.Errorf("CheckURL(%q): %v", good, err)
		}
	}
}

func TestBackoffAndRetryAfter(t *testing.T) {
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}
	for i, w := range want {
		if got := Backoff(i+1, Result{}); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := Backoff(50, Result{}); got != time.Hour {
		t.Errorf("Backoff(50) = %v", got)
	}
	if got := Backoff(1, Result{RetryAfter: 5 * time.Minute}); got != 5*time.Minute {
		t.Errorf("Retry-After not honoured: %v", got)
	}
	now := time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)
	for h, w := range map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		"-5":                            0,
		"999999":                        MaxRetryAfter,
		"Thu, 03 Dec 2026 11:02:00 GMT": 2 * time.Minute,
		"Thu, 03 Dec 2026 10:00:00 GMT": 0,
		"soon":                          0,
	} {
		if got := retryAfter(h, now); got != w {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, w)
		}
	}
	if _, err := Body(Event{}); err == nil {
		t.Error("an event without id accepted")
	}
	if !Known(FileFailed) || Known("dataset_done") {
		t.Error("Known")
	}
}
