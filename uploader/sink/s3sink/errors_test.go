package s3sink

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ferry-data/ferry/uploader/sink"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"   ", 0},
		{"0", 0},
		{"5", 5 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"007", 7 * time.Second},
		{"86400", 24 * time.Hour},
		{"86401", maxRetryAfter},
		{"99999999999999999999999", maxRetryAfter}, // overflows uint64
		{"-1", 0},
		{"1.5", 0},
		{"5s", 0},
		{"soon", 0},
		{"Thu, 26 Nov 2026 12:00:30 GMT", 30 * time.Second}, // IMF-fixdate
		{"Thursday, 26-Nov-26 12:01:00 GMT", time.Minute},   // RFC 850
		{"Thu Nov 26 12:00:10 2026", 10 * time.Second},      // ANSI C asctime
		{"Thu, 26 Nov 2026 11:59:00 GMT", 0},                // past
		{"Thu, 26 Nov 2026 12:00:00 GMT", 0},                // now
		{"Sat, 28 Nov 2026 12:00:00 GMT", maxRetryAfter},    // two days
		{"Thu, 26 Nov 2026 12:00:30 +0000", 0},              // not an HTTP-date
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// errorXML is an S3 error document.
func errorXML(code string) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+
		`<Error><Code>%s</Code><Message>test says %s</Message><RequestId>req-1</RequestId></Error>`, code, code)
}

// fakeS3 is an httptest server on 127.0.0.1 answering every request with
// handler, counting the requests.
type fakeS3 struct {
	*httptest.Server
	hits atomic.Int64
}

func newFakeS3(t *testing.T, handler http.HandlerFunc) *fakeS3 {
	t.Helper()
	f := &fakeS3{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		handler(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func newTestSink(t *testing.T, endpoint string) *Sink {
	t.Helper()
	s, err := New(Options{Endpoint: endpoint, Bucket: "bkt", AccessKey: "AK", SecretKey: "SK"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// respond returns a handler writing status, headers and body.
func respond(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if body != "" {
			w.Header().Set("Content-Type", "application/xml")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// callOp runs the sink operation named op against s.
func callOp(ctx context.Context, s *Sink, op string) error {
	body := []byte("0123456789")
	sum := sink.Digest(sha256.Sum256(body))
	switch op {
	case "Put":
		return s.Put(ctx, "dir/key.bin", body, sum, false)
	case "CreateMultipart":
		_, err := s.CreateMultipart(ctx, "dir/key.bin", 10)
		return err
	case "UploadPart":
		_, err := s.UploadPart(ctx, "dir/key.bin", "up-1", sink.Part{Number: 1, Size: 10, SHA256: sum}, body)
		return err
	case "CompleteMultipart":
		return s.CompleteMultipart(ctx, "dir/key.bin", "up-1", []sink.Part{{Number: 1, Size: 10, SHA256: sum, ETag: `"e1"`}}, sum, false)
	case "AbortMultipart":
		return s.AbortMultipart(ctx, "dir/key.bin", "up-1")
	case "Stat":
		_, err := s.Stat(ctx, "dir/key.bin")
		return err
	case "ListParts":
		_, err := s.ListParts(ctx, "dir/key.bin", "up-1")
		return err
	}
	panic("unknown op " + op)
}

func TestClassifyResponses(t *testing.T) {
	completeOK := `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>bkt</Bucket><Key>dir/key.bin</Key><ETag>"x-1"</ETag></CompleteMultipartUploadResult>`
	tests := []struct {
		name       string
		op         string
		handler    http.HandlerFunc
		wantNil    bool
		class      sink.Class
		status     int
		code       string
		retryAfter time.Duration
		checksum   bool
		notFound   bool
	}{
		{name: "503 SlowDown with Retry-After", op: "Put",
			handler: respond(503, errorXML("SlowDown"), "Retry-After", "7"),
			class:   sink.Transient, status: 503, code: "SlowDown", retryAfter: 7 * time.Second},
		{name: "503 ServiceUnavailable HEAD", op: "Stat",
			handler: respond(503, "", "Retry-After", "3"),
			class:   sink.Transient, status: 503, retryAfter: 3 * time.Second},
		{name: "502 from a proxy, HTML body", op: "UploadPart",
			handler: respond(502, "<html><body>Bad Gateway</body></html>", "Content-Type", "text/html"),
			class:   sink.Transient, status: 502},
		{name: "500 InternalError", op: "CompleteMultipart",
			handler: respond(500, errorXML("InternalError")),
			class:   sink.Transient, status: 500, code: "InternalError"},
		{name: "429 without code", op: "Put",
			handler: respond(429, "", "Retry-After", "2"),
			class:   sink.Transient, status: 429, retryAfter: 2 * time.Second},
		{name: "408", op: "UploadPart",
			handler: respond(408, errorXML("RequestTimeout")),
			class:   sink.Transient, status: 408, code: "RequestTimeout"},
		{name: "400 RequestTimeout", op: "Put",
			handler: respond(400, errorXML("RequestTimeout")),
			class:   sink.Transient, status: 400, code: "RequestTimeout"},
		// The SDK reports an error document in a 200 answer to
		// CompleteMultipartUpload as HTTP 500, whatever its code.
		{name: "200 with InternalError document", op: "CompleteMultipart",
			handler: respond(200, errorXML("InternalError")),
			class:   sink.Transient, status: 500, code: "InternalError"},
		{name: "200 with InvalidPart document", op: "CompleteMultipart",
			handler: respond(200, errorXML("InvalidPart")),
			class:   sink.Transient, status: 500, code: "InvalidPart"},
		{name: "403 AccessDenied", op: "Put",
			handler: respond(403, errorXML("AccessDenied")),
			class:   sink.Permanent, status: 403, code: "AccessDenied"},
		{name: "403 HEAD", op: "Stat",
			handler: respond(403, ""),
			class:   sink.Permanent, status: 403, code: "Forbidden"},
		// The body callOp sends still matches its SHA-256: what the server
		// got was damaged on the way, and sending it again can help.
		{name: "400 BadDigest", op: "Put",
			handler: respond(400, errorXML("BadDigest")),
			class:   sink.Transient, status: 400, code: "BadDigest", checksum: true},
		{name: "400 BadDigest part", op: "UploadPart",
			handler: respond(400, errorXML("BadDigest")),
			class:   sink.Transient, status: 400, code: "BadDigest", checksum: true},
		{name: "400 XAmzContentSHA256Mismatch", op: "UploadPart",
			handler: respond(400, errorXML("XAmzContentSHA256Mismatch")),
			class:   sink.Transient, status: 400, code: "XAmzContentSHA256Mismatch", checksum: true},
		// A malformed checksum header is ferry's fault, not the bytes'.
		{name: "400 InvalidDigest", op: "Put",
			handler: respond(400, errorXML("InvalidDigest")),
			class:   sink.Permanent, status: 400, code: "InvalidDigest"},
		{name: "400 InvalidArgument", op: "Put",
			handler: respond(400, errorXML("InvalidArgument")),
			class:   sink.Permanent, status: 400, code: "InvalidArgument"},
		{name: "404 NoSuchBucket", op: "Put",
			handler: respond(404, errorXML("NoSuchBucket")),
			class:   sink.Permanent, status: 404, code: "NoSuchBucket"},
		{name: "301 PermanentRedirect", op: "Put",
			handler: respond(301, errorXML("PermanentRedirect")),
			class:   sink.Permanent, status: 301, code: "PermanentRedirect"},
		{name: "HEAD 404", op: "Stat",
			handler: respond(404, ""),
			class:   sink.Permanent, status: 404, code: "NotFound", notFound: true},
		{name: "HEAD 404 NoSuchKey body", op: "Stat",
			handler: respond(404, errorXML("NoSuchKey")),
			class:   sink.Permanent, status: 404, notFound: true},
		{name: "Abort NoSuchUpload", op: "AbortMultipart",
			handler: respond(404, errorXML("NoSuchUpload")), wantNil: true},
		{name: "Abort 204", op: "AbortMultipart",
			handler: respond(204, ""), wantNil: true},
		{name: "Complete NoSuchUpload", op: "CompleteMultipart",
			handler: respond(404, errorXML("NoSuchUpload")),
			class:   sink.Permanent, status: 404, code: "NoSuchUpload", notFound: true},
		{name: "ListParts NoSuchUpload", op: "ListParts",
			handler: respond(404, errorXML("NoSuchUpload")),
			class:   sink.Permanent, status: 404, code: "NoSuchUpload", notFound: true},
		{name: "Complete OK", op: "CompleteMultipart",
			handler: respond(200, completeOK), wantNil: true},
		{name: "connection closed without response", op: "Put",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			},
			class: sink.Transient},
		{name: "truncated response body", op: "CompleteMultipart",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Length", "1000")
				w.WriteHeader(200)
				_, _ = io.WriteString(w, completeOK[:40])
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			},
			class: sink.Transient, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.handler
			if tt.op == "CompleteMultipart" {
				// The object a completion made, as HeadObject shows it (a
				// store without composite checksums): the sink checks it
				// before tagging.
				h = func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodHead {
						w.Header().Set("Content-Length", "10")
						w.WriteHeader(200)
						return
					}
					tt.handler(w, r)
				}
			}
			f := newFakeS3(t, h)
			err := callOp(t.Context(), newTestSink(t, f.URL), tt.op)
			if tt.wantNil {
				if err != nil {
					t.Fatalf("%s: %v, want nil", tt.op, err)
				}
				return
			}
			var e *sink.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: %v (%T), want a *sink.Error", tt.op, err, err)
			}
			if e.Op != tt.op {
				t.Errorf("Op = %q, want %q", e.Op, tt.op)
			}
			if e.Class != tt.class {
				t.Errorf("Class = %v, want %v (%v)", e.Class, tt.class, err)
			}
			if sink.IsPermanent(err) != (tt.class == sink.Permanent) {
				t.Errorf("IsPermanent = %v, want %v", sink.IsPermanent(err), tt.class == sink.Permanent)
			}
			if e.Status != tt.status {
				t.Errorf("Status = %d, want %d", e.Status, tt.status)
			}
			if tt.code != "" && e.Code != tt.code {
				t.Errorf("Code = %q, want %q", e.Code, tt.code)
			}
			if got := sink.RetryAfter(err); got != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", got, tt.retryAfter)
			}
			if got := errors.Is(err, sink.ErrChecksum); got != tt.checksum {
				t.Errorf("errors.Is(ErrChecksum) = %v, want %v", got, tt.checksum)
			}
			if got := errors.Is(err, sink.ErrNotFound); got != tt.notFound {
				t.Errorf("errors.Is(ErrNotFound) = %v, want %v", got, tt.notFound)
			}
			if tt.code != "" {
				var apiErr smithy.APIError
				if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.code {
					t.Errorf("the SDK's APIError is not reachable through the error chain: %v", err)
				}
			}
		})
	}
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, op := range []string{"Put", "UploadPart", "Stat"} {
		err := callOp(t.Context(), newTestSink(t, "http://"+addr), op)
		var e *sink.Error
		if !errors.As(err, &e) || e.Class != sink.Transient || e.Status != 0 {
			t.Errorf("%s to a closed port: %v, want transient without status", op, err)
		}
	}
}

func TestCallerCancellation(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the server closes
	f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	s := newTestSink(t, f.URL)

	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := s.Stat(ctx, "k")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled context: %v, want errors.Is(context.Canceled)", err)
	}
	if sink.IsPermanent(err) {
		t.Errorf("cancellation classified as permanent: %v", err)
	}

	ctx, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	err = s.Put(ctx, "k", nil, sha256.Sum256(nil), false)
	if !errors.Is(err, context.DeadlineExceeded) || sink.IsPermanent(err) {
		t.Errorf("Put with an expired context: %v, want transient matching context.DeadlineExceeded", err)
	}
}

func TestInvalidKeysAreNotSent(t *testing.T) {
	f := newFakeS3(t, respond(200, ""))
	s := newTestSink(t, f.URL)
	ctx := t.Context()
	sum := sink.Digest(sha256.Sum256(nil))
	for _, key := range []string{"", strings.Repeat("k", MaxKeyLen+1), "bad\xffutf8", strings.Repeat("ü", MaxKeyLen/2) + "x"} {
		errs := map[string]error{"Put": s.Put(ctx, key, nil, sum, false)}
		_, errs["CreateMultipart"] = s.CreateMultipart(ctx, key, 0)
		_, errs["UploadPart"] = s.UploadPart(ctx, key, "u", sink.Part{Number: 1, SHA256: sum}, nil)
		errs["CompleteMultipart"] = s.CompleteMultipart(ctx, key, "u", []sink.Part{{Number: 1, ETag: "e"}}, sum, false)
		errs["AbortMultipart"] = s.AbortMultipart(ctx, key, "u")
		_, errs["Stat"] = s.Stat(ctx, key)
		for op, err := range errs {
			if !errors.Is(err, ErrInvalidKey) || !sink.IsPermanent(err) {
				t.Errorf("%s(%.20q): %v, want permanent ErrInvalidKey", op, key, err)
			}
		}
	}
	if n := f.hits.Load(); n != 0 {
		t.Errorf("%d requests reached the server, want 0", n)
	}
	// The longest valid key is accepted.
	if err := s.Put(ctx, strings.Repeat("k", MaxKeyLen), nil, sum, false); err != nil {
		t.Errorf("Put with a %d-byte key: %v", MaxKeyLen, err)
	}
}

func TestBadArgumentsAreNotSent(t *testing.T) {
	f := newFakeS3(t, respond(200, ""))
	s := newTestSink(t, f.URL)
	ctx := t.Context()
	body := []byte("abc")
	sum := sink.Digest(sha256.Sum256(body))
	_, err1 := s.UploadPart(ctx, "k", "", sink.Part{Number: 1, Size: 3, SHA256: sum}, body)
	_, err2 := s.UploadPart(ctx, "k", "u", sink.Part{Number: 0, Size: 3, SHA256: sum}, body)
	_, err3 := s.UploadPart(ctx, "k", "u", sink.Part{Number: 10001, Size: 3, SHA256: sum}, body)
	_, err4 := s.UploadPart(ctx, "k", "u", sink.Part{Number: 1, Size: 4, SHA256: sum}, body)
	err5 := s.CompleteMultipart(ctx, "k", "u", nil, sum, false)
	err6 := s.CompleteMultipart(ctx, "k", "u", []sink.Part{{Number: 10001, ETag: "e"}}, sum, false)
	err7 := s.AbortMultipart(ctx, "k", "")
	_, err8 := s.CreateMultipart(ctx, "k", -1)
	for i, err := range []error{err1, err2, err3, err4, err5, err6, err7, err8} {
		if !sink.IsPermanent(err) {
			t.Errorf("case %d: %v, want a permanent error", i+1, err)
		}
	}
	if n := f.hits.Load(); n != 0 {
		t.Errorf("%d requests reached the server, want 0", n)
	}
}

func TestClassifySDKErrors(t *testing.T) {
	resp := func(status int, h http.Header) *awshttp.ResponseError {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: h}},
			Err:      &smithy.GenericAPIError{Code: "SlowDown"},
		}}
	}
	ctx := context.Background()
	tests := []struct {
		name  string
		err   error
		class sink.Class
	}{
		{"invalid params", &smithy.OperationError{Err: &smithy.InvalidParamsError{Context: "PutObjectInput"}}, sink.Permanent},
		{"serialization", &smithy.OperationError{Err: &smithy.SerializationError{Err: errors.New("x")}}, sink.Permanent},
		{"send error", &smithy.OperationError{Err: &smithyhttp.RequestSendError{Err: io.ErrUnexpectedEOF}}, sink.Transient},
		{"unknown", errors.New("something"), sink.Transient},
		{"503 SlowDown", &smithy.OperationError{Err: resp(503, http.Header{"Retry-After": {"4"}})}, sink.Transient},
	}
	for _, tt := range tests {
		err := classify(ctx, "Put", tt.err)
		var e *sink.Error
		if !errors.As(err, &e) || e.Class != tt.class {
			t.Errorf("%s: classify = %v, want class %v", tt.name, err, tt.class)
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: the original error is not in the chain", tt.name)
		}
	}
	if got := sink.RetryAfter(classify(ctx, "Put", &smithy.OperationError{Err: resp(503, http.Header{"Retry-After": {"4"}})})); got != 4*time.Second {
		t.Errorf("RetryAfter = %v, want 4s", got)
	}
	if classify(ctx, "Put", nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

// TestWireFormat checks what goes over the wire: the SHA-256 of each body as
// both the S3 checksum and the SigV4 payload hash (taken from the caller's
// digest, so a wrong digest shows up in the header), the sha256 metadata,
// and no aws-chunked encoding or trailers.
func TestWireFormat(t *testing.T) {
	type seen struct {
		method, path, query string
		header              http.Header
		body                []byte
	}
	reqs := make(chan seen, 10)
	headBody := []byte("the bytes of an instrument file")
	partSum := sha256.Sum256(headBody)
	composite := sha256.Sum256(partSum[:])
	headComposite := base64.StdEncoding.EncodeToString(composite[:]) + "-1"
	f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs <- seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), b}
		w.Header().Set("ETag", `"etag-1"`)
		switch {
		case r.Method == http.MethodPost && r.URL.Query().Has("uploads"):
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>k</Key><UploadId>up-7</UploadId></InitiateMultipartUploadResult>`)
		case r.Method == http.MethodPost:
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><ETag>"x-1"</ETag></CompleteMultipartUploadResult>`)
		case r.Method == http.MethodHead:
			// The completed object: one part, its composite checksum.
			w.Header().Set("Content-Length", strconv.Itoa(len(headBody)))
			w.Header().Set("X-Amz-Checksum-Sha256", headComposite)
		}
	})
	s := newTestSink(t, f.URL)
	ctx := t.Context()
	body := []byte("the bytes of an instrument file")
	sum := sink.Digest(sha256.Sum256(body))
	b64sum := base64.StdEncoding.EncodeToString(sum[:])

	checkBodyHeaders := func(r seen, sum sink.Digest) {
		t.Helper()
		if got := r.header.Get("X-Amz-Content-Sha256"); got != sum.Hex() {
			t.Errorf("%s %s: X-Amz-Content-Sha256 = %q, want %q", r.method, r.path, got, sum.Hex())
		}
		if got, want := r.header.Get("X-Amz-Checksum-Sha256"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
			t.Errorf("%s %s: X-Amz-Checksum-Sha256 = %q, want %q", r.method, r.path, got, want)
		}
		if r.header.Get("Content-Encoding") != "" || r.header.Get("X-Amz-Trailer") != "" || r.header.Get("X-Amz-Decoded-Content-Length") != "" {
			t.Errorf("%s %s: chunked/trailer headers present: %v", r.method, r.path, r.header)
		}
		if string(r.body) != string(body) {
			t.Errorf("%s %s: body %q, want %q", r.method, r.path, r.body, body)
		}
	}

	if err := s.Put(ctx, "run 1/größe.tif", body, sum, false); err != nil {
		t.Fatal(err)
	}
	r := <-reqs
	if r.method != http.MethodPut || r.path != "/bkt/run%201/gr%C3%B6%C3%9Fe.tif" {
		t.Errorf("Put: %s %s, want PUT /bkt/run%%201/gr%%C3%%B6%%C3%%9Fe.tif (path-style)", r.method, r.path)
	}
	if got := r.header.Get("X-Amz-Meta-Sha256"); got != sum.Hex() {
		t.Errorf("Put: x-amz-meta-sha256 = %q, want %q", got, sum.Hex())
	}
	checkBodyHeaders(r, sum)

	// A wrong digest goes out as given: the server is the one to check.
	wrong := sink.Digest(sha256.Sum256([]byte("other")))
	if err := s.Put(ctx, "k", body, wrong, false); err != nil {
		t.Fatal(err)
	}
	if r := <-reqs; r.header.Get("X-Amz-Content-Sha256") != wrong.Hex() {
		t.Errorf("Put with a wrong digest: X-Amz-Content-Sha256 = %q, want the given %q", r.header.Get("X-Amz-Content-Sha256"), wrong.Hex())
	}

	id, err := s.CreateMultipart(ctx, "k", int64(len(body)))
	if err != nil || id != "up-7" {
		t.Fatalf("CreateMultipart = %q, %v", id, err)
	}
	r = <-reqs
	if got := r.header.Get("X-Amz-Checksum-Algorithm"); got != "SHA256" {
		t.Errorf("CreateMultipart: x-amz-checksum-algorithm = %q, want SHA256", got)
	}
	if got := r.header.Get("X-Amz-Meta-Sha256"); got != "" {
		t.Errorf("CreateMultipart: x-amz-meta-sha256 = %q, want none (the hash is not known yet: the tag holds it)", got)
	}

	p := sink.Part{Number: 3, Size: int64(len(body)), SHA256: sum}
	etag, err := s.UploadPart(ctx, "k", id, p, body)
	if err != nil || etag != `"etag-1"` {
		t.Fatalf("UploadPart = %q, %v", etag, err)
	}
	r = <-reqs
	if q, err := url.ParseQuery(r.query); err != nil || q.Get("partNumber") != "3" || q.Get("uploadId") != "up-7" {
		t.Errorf("UploadPart query = %q, want partNumber=3 and uploadId=up-7", r.query)
	}
	checkBodyHeaders(r, sum)

	p.ETag = etag
	if err := s.CompleteMultipart(ctx, "k", id, []sink.Part{p}, sum, false); err != nil {
		t.Fatal(err)
	}
	r = <-reqs
	var doc struct {
		Parts []struct {
			PartNumber     int
			ETag           string
			ChecksumSHA256 string
		} `xml:"Part"`
	}
	if err := xml.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("CompleteMultipart body %q: %v", r.body, err)
	}
	if len(doc.Parts) != 1 || doc.Parts[0].PartNumber != 3 || doc.Parts[0].ETag != `"etag-1"` || doc.Parts[0].ChecksumSHA256 != b64sum {
		t.Errorf("CompleteMultipart parts = %+v, want number 3, etag \"etag-1\", checksum %s", doc.Parts, b64sum)
	}
	// Then the object is checked against the parts, and tagged with its
	// SHA-256.
	r = <-reqs
	if r.method != http.MethodHead || r.header.Get("X-Amz-Checksum-Mode") != "ENABLED" {
		t.Errorf("after CompleteMultipartUpload: %s with x-amz-checksum-mode %q, want HeadObject with ENABLED", r.method, r.header.Get("X-Amz-Checksum-Mode"))
	}
	r = <-reqs
	var tagging struct {
		Tags []struct{ Key, Value string } `xml:"TagSet>Tag"`
	}
	if q, _ := url.ParseQuery(r.query); r.method != http.MethodPut || !q.Has("tagging") {
		t.Fatalf("after CompleteMultipartUpload: %s %s?%s, want PutObjectTagging", r.method, r.path, r.query)
	}
	if err := xml.Unmarshal(r.body, &tagging); err != nil {
		t.Fatalf("PutObjectTagging body %q: %v", r.body, err)
	}
	if len(tagging.Tags) != 1 || tagging.Tags[0].Key != TagSHA256 || tagging.Tags[0].Value != sum.Hex() {
		t.Errorf("PutObjectTagging tags = %+v, want only %s=%s", tagging.Tags, TagSHA256, sum.Hex())
	}
}

func TestNewValidatesOptions(t *testing.T) {
	ok := Options{Endpoint: "http://127.0.0.1:9000", Bucket: "b", AccessKey: "a", SecretKey: "s"}
	if _, err := New(ok); err != nil {
		t.Fatalf("New(%+v): %v", ok, err)
	}
	for _, mod := range []func(*Options){
		func(o *Options) { o.Endpoint = "" },
		func(o *Options) { o.Endpoint = "127.0.0.1:9000" },
		func(o *Options) { o.Endpoint = "ftp://host" },
		func(o *Options) { o.Endpoint = "http://" },
		func(o *Options) { o.Bucket = "" },
		func(o *Options) { o.AccessKey = "" },
		func(o *Options) { o.SecretKey = "" },
		func(o *Options) { o.MaxConns = -1 },
	} {
		o := ok
		mod(&o)
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}

// A server that stored something other than what was sent says so in the
// checksum it echoes: Put must not report success.
func TestPutChecksumEchoMismatch(t *testing.T) {
	other := sha256.Sum256([]byte("something else"))
	srv := newFakeS3(t, respond(200, "", "x-amz-checksum-sha256", base64.StdEncoding.EncodeToString(other[:])))
	err := callOp(t.Context(), newTestSink(t, srv.URL), "Put")
	if !sink.IsPermanent(err) || !errors.Is(err, sink.ErrChecksum) {
		t.Fatalf("Put with a mismatching echoed checksum = %v, want a permanent checksum error", err)
	}
	// The matching echo (and none at all) are success.
	body := []byte("0123456789")
	sum := sha256.Sum256(body)
	srv = newFakeS3(t, respond(200, "", "x-amz-checksum-sha256", base64.StdEncoding.EncodeToString(sum[:])))
	if err := callOp(t.Context(), newTestSink(t, srv.URL), "Put"); err != nil {
		t.Fatalf("Put with the matching echo: %v", err)
	}
}

func TestPreconditionFailedIsExists(t *testing.T) {
	for _, op := range []string{"Put", "CompleteMultipart"} {
		srv := newFakeS3(t, respond(412, errorXML("PreconditionFailed")))
		err := callOp(t.Context(), newTestSink(t, srv.URL), op)
		if !errors.Is(err, sink.ErrExists) || !sink.IsPermanent(err) {
			t.Errorf("%s answered 412 = %v, want a permanent error matching sink.ErrExists", op, err)
		}
	}
	srv := newFakeS3(t, respond(409, errorXML("ConditionalRequestConflict")))
	if err := callOp(t.Context(), newTestSink(t, srv.URL), "Put"); sink.IsPermanent(err) || err == nil {
		t.Errorf("409 ConditionalRequestConflict = %v, want transient", err)
	}
}

func TestParseRateLimit(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		rem, reset string
		ok         bool
		want       sink.RateLimit
	}{
		{"10", "30", true, sink.RateLimit{Remaining: 10, Reset: now.Add(30 * time.Second)}},
		{"0", "1800000060", true, sink.RateLimit{Remaining: 0, Reset: now.Add(time.Minute)}}, // Unix seconds
		{"5", "999999", true, sink.RateLimit{Remaining: 5, Reset: now.Add(24 * time.Hour)}},  // capped
		{"", "30", false, sink.RateLimit{}},
		{"x", "30", false, sink.RateLimit{}},
		{"3", "", false, sink.RateLimit{}},
		{"-1", "30", false, sink.RateLimit{}},
	} {
		h := http.Header{}
		if c.rem != "" {
			h.Set("X-RateLimit-Remaining", c.rem)
		}
		if c.reset != "" {
			h.Set("X-RateLimit-Reset", c.reset)
		}
		got, ok := parseRateLimit(h, now)
		if ok != c.ok || !got.Reset.Equal(c.want.Reset) || got.Remaining != c.want.Remaining {
			t.Errorf("parseRateLimit(%q, %q) = %+v, %v; want %+v, %v", c.rem, c.reset, got, ok, c.want, c.ok)
		}
	}
}

func TestRateLimitHeadersAreReported(t *testing.T) {
	srv := newFakeS3(t, respond(200, "", "X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "12"))
	var got []sink.RateLimit
	s, err := New(Options{Endpoint: srv.URL, Bucket: "bkt", AccessKey: "AK", SecretKey: "SK",
		OnRateLimit: func(rl sink.RateLimit) { got = append(got, rl) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := callOp(t.Context(), s, "Put"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Remaining != 3 || time.Until(got[0].Reset) < 10*time.Second {
		t.Fatalf("reported %+v, want one budget of 3 until about 12 s from now", got)
	}
}

// A checksum mismatch for bytes that no longer match the SHA-256 the
// caller gave (its source changed between hashing and sending) stays
// permanent: sending them again cannot help.
func TestBadDigestOfChangedBytesIsPermanent(t *testing.T) {
	f := newFakeS3(t, respond(400, errorXML("BadDigest")))
	s := newTestSink(t, f.URL)
	body := []byte("0123456789")
	sum := sink.Digest(sha256.Sum256([]byte("another content")))
	err := s.Put(t.Context(), "dir/key.bin", body, sum, false)
	if !errors.Is(err, sink.ErrChecksum) || !sink.IsPermanent(err) {
		t.Fatalf("Put of changed bytes: %v, want a permanent ErrChecksum", err)
	}
	_, err = s.UploadPart(t.Context(), "dir/key.bin", "up-1", sink.Part{Number: 1, Size: 10, SHA256: sum}, body)
	if !errors.Is(err, sink.ErrChecksum) || !sink.IsPermanent(err) {
		t.Fatalf("UploadPart of changed bytes: %v, want a permanent ErrChecksum", err)
	}
}
