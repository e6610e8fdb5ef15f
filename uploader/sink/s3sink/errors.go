package s3sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/ferry-data/ferry/uploader/sink"
)

// maxRetryAfter bounds a server-requested pause; larger values are clamped.
const maxRetryAfter = 24 * time.Hour

// checksumCodes are the S3 error codes that mean the bytes received do not
// match the checksum sent with them (ErrChecksum; Put and UploadPart tell
// damage in transit from bytes that changed, sink.InTransit).
var checksumCodes = map[string]bool{
	"BadDigest":                 true, // x-amz-checksum-* or Content-MD5 mismatch
	"XAmzContentSHA256Mismatch": true, // SigV4 payload hash mismatch
}

// transientCodes are S3 error codes that mean "try again later", whatever
// HTTP status carries them (CompleteMultipartUpload can report them in a 200).
var transientCodes = map[string]bool{
	"SlowDown":            true,
	"RequestTimeout":      true,
	"InternalError":       true,
	"ServiceUnavailable":  true,
	"Throttling":          true,
	"ThrottlingException": true,
	// RequestTimeTooSkewed is left out on purpose: a clock to fix is a
	// permanent failure.
}

// notFoundCodes are the codes HeadObject reports for a missing object.
var notFoundCodes = map[string]bool{"NotFound": true, "NoSuchKey": true}

// classify turns an SDK error from operation op into a *sink.Error. It never
// looks at error strings: only at the caller's context, the HTTP response
// (*awshttp.ResponseError) and the S3 error code (smithy.APIError).
func classify(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	// The caller gave up: say so plainly, the caller checks its context.
	if cerr := ctx.Err(); cerr != nil {
		if !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return &sink.Error{Class: sink.Transient, Op: op, Err: err}
	}

	e := &sink.Error{Op: op, Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		e.Status = re.Response.StatusCode
		e.RetryAfter = parseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now())
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e.Code = apiErr.ErrorCode()
	}

	switch {
	case checksumCodes[e.Code]:
		e.Class = sink.Permanent
		e.Err = fmt.Errorf("%w: %w", sink.ErrChecksum, err)
	case e.Status == http.StatusPreconditionFailed || e.Code == "PreconditionFailed":
		// If-None-Match: * found an object under the key.
		e.Class = sink.Permanent
		e.Err = fmt.Errorf("%w: %w", sink.ErrExists, err)
	case e.Status == http.StatusConflict && e.Code == "ConditionalRequestConflict":
		// A concurrent conditional write: try again.
		e.Class = sink.Transient
	case e.Code == "NoSuchUpload":
		// The upload was completed, aborted or expired.
		e.Class = sink.Permanent
		e.Err = fmt.Errorf("%w: %w", sink.ErrNotFound, err)
	case (op == "Stat" || op == "Get" || op == "ReadBack") && (notFoundCodes[e.Code] || e.Status == http.StatusNotFound && e.Code != "NoSuchBucket"):
		e.Class = sink.Permanent
		e.Err = fmt.Errorf("%w: %w", sink.ErrNotFound, err)
	case transientCodes[e.Code]:
		e.Class = sink.Transient
	case e.Status >= 500, e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests:
		e.Class = sink.Transient
	case e.Status >= 400:
		e.Class = sink.Permanent
	case e.Code != "":
		// An error document in a 2xx/3xx response with a code not known
		// to be transient (e.g. CompleteMultipartUpload's InvalidPart).
		e.Class = sink.Permanent
	case e.Status >= 300:
		// Redirects (wrong region or endpoint) need a configuration change.
		e.Class = sink.Permanent
	case isRequestError(err):
		// The SDK refused to build the request: retrying cannot help.
		e.Class = sink.Permanent
	default:
		// No usable response: connection refused or reset, timeouts, EOF,
		// a truncated or unreadable response body.
		e.Class = sink.Transient
	}
	return e
}

// isRequestError reports whether err arose while the SDK validated or
// serialized the input, before anything was sent.
func isRequestError(err error) bool {
	var ip *smithy.InvalidParamsError
	var se *smithy.SerializationError
	return errors.As(err, &ip) || errors.As(err, &se)
}

// errorCode returns the S3 error code carried by a *sink.Error, or "".
func errorCode(err error) string {
	var e *sink.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// parseRetryAfter interprets a Retry-After header value, either
// delta-seconds ("120") or an HTTP-date, relative to now. It returns 0 for an
// empty, malformed or past value and clamps to maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		// ParseUint reports ErrRange at the first digit too many, before
		// it sees what follows: "99999999999999999999x" is malformed, not
		// huge.
		if strings.TrimLeft(v, "0123456789") != "" {
			return 0
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil { // digits only: the one error left is ErrRange
			return maxRetryAfter
		}
		if n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	t, ok := parseHTTPDate(v, now)
	if !ok {
		return 0
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0
	case d > maxRetryAfter:
		return maxRetryAfter
	}
	return d
}

// parseHTTPDate reads an HTTP-date as RFC 9110 (section 5.6.7) defines it:
// IMF-fixdate, or the obsolete RFC 850 and asctime forms, always in GMT. A
// zone other than GMT is malformed (http.ParseTime would read one through
// the local time zone database, so the pause would depend on the host's
// zone), and an RFC 850 two-digit year more than 50 years ahead of now is
// the most recent past year with those digits.
func parseHTTPDate(v string, now time.Time) (time.Time, bool) {
	if t, err := time.Parse(http.TimeFormat, v); err == nil {
		return t, true
	}
	if t, err := time.Parse("Monday, 02-Jan-06 15:04:05 GMT", v); err == nil {
		y := now.Year() - now.Year()%100 + t.Year()%100
		switch {
		case y > now.Year()+50:
			y -= 100
		case y <= now.Year()-50:
			y += 100
		}
		return time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC), true
	}
	if t, err := time.Parse(time.ANSIC, v); err == nil {
		return t, true
	}
	return time.Time{}, false
}
