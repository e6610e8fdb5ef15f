// Package s3sink is the S3 implementation of sink.Sink, for Amazon S3 and
// S3-compatible object stores (path-style addressing, SigV4).
//
// Every object carries its whole-object SHA-256 (lowercase hex), since a
// multipart upload's S3 checksum is composite: an object sent in one
// request as user metadata "sha256", one sent in parts as the object tag
// "sha256", set when it is completed (the parts are hashed as they are
// sent, each byte of the source read once; parts sent by an earlier ferry,
// which read the file twice, have the metadata). Stat reads both. Each
// request sends the SHA-256 of its body twice over: as x-amz-checksum-sha256
// (checked by the server against the bytes stored) and as the SigV4 payload
// hash. Both come from the digests the caller already computed, so the SDK
// never hashes a body itself.
//
// The client makes exactly one attempt per call (aws.NopRetryer) and every
// failure is returned as a *sink.Error classified as transient or permanent;
// see the sink package for the retry contract.
package s3sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/ferry-data/ferry/internal/pace"
	"github.com/ferry-data/ferry/uploader/sink"
)

// DefaultRegion is the SigV4 signing region of an Options without one
// (and of an s3 target without region in the configuration).
const DefaultRegion = "us-east-1"

// MinPartSize is the smallest part S3 accepts, except for the last part of
// an upload.
const MinPartSize = 5 << 20

// MaxKeyLen is the longest object key S3 accepts, in bytes of UTF-8.
const MaxKeyLen = 1024

// MetaSHA256 is the user-metadata key (x-amz-meta-sha256) that holds the
// whole-object SHA-256, in lowercase hex, of an object sent in one request
// (and of one sent in parts by ferry before it read each byte once).
const MetaSHA256 = "sha256"

// TagSHA256 is the object tag that holds the whole-object SHA-256, in
// lowercase hex, of an object sent in parts: S3 takes user metadata only
// when an upload is created, and the parts are hashed as they are sent,
// so the hash is stored right after the upload is completed. A reader
// finds an object's SHA-256 in the tag, else in the metadata (Stat).
const TagSHA256 = "sha256"

// DefaultMaxConns is the connection limit per host used when Options.MaxConns
// is 0 and Options.HTTPClient is nil.
const DefaultMaxConns = 16

// ErrInvalidKey is matched (errors.Is) by the permanent error returned for a
// key that S3 cannot store: empty, longer than MaxKeyLen bytes, or not valid
// UTF-8. No request is sent for such a key.
var ErrInvalidKey = errors.New("invalid object key")

// Options configures a Sink.
type Options struct {
	// Endpoint is the base URL of the S3 service, e.g.
	// "https://s3.eu-central-1.amazonaws.com" or "http://127.0.0.1:7070".
	// Buckets are addressed path-style (Endpoint/Bucket/Key).
	Endpoint string
	// Region is the SigV4 signing region; DefaultRegion when empty.
	Region string
	// Bucket receives the objects. It must exist.
	Bucket string
	// AccessKey and SecretKey are the static credentials to sign with.
	AccessKey string
	SecretKey string
	// HTTPClient sends the requests. When nil, a client with a dedicated
	// transport (connect, TLS and response-header timeouts, a pool of
	// MaxConns connections) is used. Cancellation and overall deadlines come
	// from each call's context.
	HTTPClient *http.Client
	// OnRateLimit, when set, is told the request budget a response
	// announces (X-RateLimit-Remaining / X-RateLimit-Reset), so the caller
	// can slow down before the server has to refuse.
	OnRateLimit func(sink.RateLimit)
	// MaxConns limits the connections of the default transport to the
	// endpoint; 0 means DefaultMaxConns. Ignored when HTTPClient is set.
	MaxConns int
	// MaxParts is the most parts of one upload; 0 means
	// sink.DefaultMaxParts (S3's 10,000). Tests set it low.
	MaxParts int
}

// Sink stores objects in one S3 bucket. It is safe for concurrent use.
type Sink struct {
	client *s3.Client
	bucket string
	lock   objectLock
	// maxParts is Options.MaxParts or sink.DefaultMaxParts.
	maxParts int
}

var _ sink.Sink = (*Sink)(nil)

// New returns a Sink for opts. It sends no request: a missing bucket or bad
// credentials show up as permanent errors of the first call.
func New(opts Options) (*Sink, error) {
	u, err := url.Parse(opts.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("s3sink: endpoint: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3sink: endpoint %q: want http(s)://host[:port]", opts.Endpoint)
	}
	if opts.Bucket == "" {
		return nil, errors.New("s3sink: no bucket")
	}
	if opts.AccessKey == "" || opts.SecretKey == "" {
		return nil, errors.New("s3sink: access key and secret key are required")
	}
	if opts.MaxConns < 0 {
		return nil, fmt.Errorf("s3sink: MaxConns %d < 0", opts.MaxConns)
	}
	region := opts.Region
	if region == "" {
		region = DefaultRegion
	}
	hc := opts.HTTPClient
	if hc == nil {
		n := opts.MaxConns
		if n == 0 {
			n = DefaultMaxConns
		}
		hc = &http.Client{Transport: newTransport(n)}
	}
	if opts.OnRateLimit != nil {
		c := *hc
		base := c.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		c.Transport = &rateLimitTransport{base: base, report: opts.OnRateLimit}
		hc = &c
	}
	return &Sink{
		client:   newClient(opts.Endpoint, region, opts.AccessKey, opts.SecretKey, hc),
		bucket:   opts.Bucket,
		maxParts: opts.MaxParts,
	}, nil
}

// newClient returns an S3 client set up the way ferry talks to S3: static
// credentials, path-style addressing, no SDK retries, and checksums only where
// an operation requires them (no CRC32 trailers, which many S3-compatible
// servers reject). hc may be nil for the SDK's default HTTP client.
func newClient(endpoint, region, accessKey, secretKey string, hc *http.Client) *s3.Client {
	o := s3.Options{
		BaseEndpoint:               aws.String(endpoint),
		Region:                     region,
		Credentials:                staticCredentials{accessKey, secretKey},
		UsePathStyle:               true,
		Retryer:                    aws.NopRetryer{},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if hc != nil {
		o.HTTPClient = hc
	}
	return s3.New(o)
}

// newTransport returns the HTTP transport New uses by default, with at most
// maxConns connections per host.
func newTransport(maxConns int) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          maxConns,
		MaxIdleConnsPerHost:   maxConns,
		MaxConnsPerHost:       maxConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ExpectContinueTimeout: 2 * time.Second,
		// Time from the end of the request body to the response headers.
		// CompleteMultipartUpload of a large object can take a while.
		ResponseHeaderTimeout: 5 * time.Minute,
	}
}

// staticCredentials is an aws.CredentialsProvider with fixed keys.
type staticCredentials struct{ accessKey, secretKey string }

func (c staticCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: c.accessKey, SecretAccessKey: c.secretKey, Source: "s3sink"}, nil
}

// Bucket returns the bucket the sink writes to.
func (s *Sink) Bucket() string { return s.bucket }

// MinPartSize implements sink.Sink: 5 MiB.
func (s *Sink) MinPartSize() int64 { return MinPartSize }

// MaxParts implements sink.Sink: Options.MaxParts, 10,000 by default.
func (s *Sink) MaxParts() int {
	if s.maxParts > 0 {
		return s.maxParts
	}
	return sink.DefaultMaxParts
}

// Put implements sink.Sink with one PutObject.
func (s *Sink) Put(ctx context.Context, key string, body []byte, sum sink.Digest, ifAbsent bool) error {
	const op = "Put"
	return s.put(ctx, op, key, body, sum, ifAbsent, nil)
}

// put sends one PutObject; lock, when set, adds its retention.
func (s *Sink) put(ctx context.Context, op, key string, body []byte, sum sink.Digest, ifAbsent bool, lock func(*s3.PutObjectInput)) error {
	if err := checkKey(op, key); err != nil {
		return err
	}
	in := &s3.PutObjectInput{
		Bucket:         aws.String(s.bucket),
		Key:            aws.String(key),
		Body:           pace.From(ctx).Reader(ctx, bytes.NewReader(body)),
		ContentLength:  aws.Int64(int64(len(body))),
		ChecksumSHA256: aws.String(b64(sum)),
		Metadata:       userMetadata(ctx, &sum),
		IfNoneMatch:    ifNoneMatch(ifAbsent),
	}
	if lock != nil {
		lock(in)
	}
	out, err := s.client.PutObject(ctx, in, withPayloadHash(sum))
	if err != nil {
		return sink.InTransit(op, classify(ctx, op, err), body, sum)
	}
	// The server checked the body against ChecksumSHA256 (BadDigest
	// otherwise); when it echoes the checksum it stored, compare that too.
	if got := aws.ToString(out.ChecksumSHA256); got != "" && got != b64(sum) {
		return &sink.Error{Class: sink.Permanent, Op: op, Code: "ChecksumEcho",
			Err: fmt.Errorf("%w: server stored checksum %s, sent %s", sink.ErrChecksum, got, b64(sum))}
	}
	return nil
}

// CreateMultipart implements sink.Sink with CreateMultipartUpload (checksum
// algorithm SHA256). size is not sent: S3 learns it from the parts. The
// whole-object SHA-256 is not known yet: CompleteMultipart tags it.
func (s *Sink) CreateMultipart(ctx context.Context, key string, size int64) (string, error) {
	const op = "CreateMultipart"
	if err := checkKey(op, key); err != nil {
		return "", err
	}
	if size < 0 {
		return "", sink.NewPermanent(op, fmt.Errorf("negative size %d", size))
	}
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(s.bucket),
		Key:               aws.String(key),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		Metadata:          userMetadata(ctx, nil),
	})
	if err != nil {
		return "", classify(ctx, op, err)
	}
	id := aws.ToString(out.UploadId)
	if id == "" {
		return "", sink.NewTransient(op, errors.New("server returned no UploadId"))
	}
	return id, nil
}

// UploadPart implements sink.Sink.
func (s *Sink) UploadPart(ctx context.Context, key, uploadID string, p sink.Part, body []byte) (string, error) {
	const op = "UploadPart"
	if err := checkKey(op, key); err != nil {
		return "", err
	}
	if err := checkUploadID(op, uploadID); err != nil {
		return "", err
	}
	if err := checkPartNumber(op, p.Number); err != nil {
		return "", err
	}
	if int64(len(body)) != p.Size {
		return "", sink.NewPermanent(op, fmt.Errorf("part %d: body has %d bytes, part size is %d", p.Number, len(body), p.Size))
	}
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:         aws.String(s.bucket),
		Key:            aws.String(key),
		UploadId:       aws.String(uploadID),
		PartNumber:     aws.Int32(int32(p.Number)),
		Body:           pace.From(ctx).Reader(ctx, bytes.NewReader(body)),
		ContentLength:  aws.Int64(p.Size),
		ChecksumSHA256: aws.String(b64(p.SHA256)),
	}, withPayloadHash(p.SHA256))
	if err != nil {
		return "", sink.InTransit(op, classify(ctx, op, err), body, p.SHA256)
	}
	etag := aws.ToString(out.ETag)
	if etag == "" {
		return "", sink.NewTransient(op, fmt.Errorf("part %d: server returned no ETag", p.Number))
	}
	return etag, nil
}

// CompleteMultipart implements sink.Sink with CompleteMultipartUpload, a
// HeadObject that checks the object is made of the parts (its size and
// composite checksum: the SHA-256 of the parts' SHA-256s, with their
// count), and PutObjectTagging, which stores sum as its TagSHA256 tag.
// When the upload is gone (NoSuchUpload: completed by an earlier call
// whose answer, or whose tag, was lost), or the parts carry no ETags, that
// check alone decides: a crash between completing and tagging is finished
// by completing again.
func (s *Sink) CompleteMultipart(ctx context.Context, key, uploadID string, parts []sink.Part, sum sink.Digest, ifAbsent bool) error {
	const op = "CompleteMultipart"
	if err := checkKey(op, key); err != nil {
		return err
	}
	if err := checkUploadID(op, uploadID); err != nil {
		return err
	}
	if len(parts) == 0 {
		return sink.NewPermanent(op, errors.New("no parts"))
	}
	cps := make([]types.CompletedPart, len(parts))
	etags := true
	for i, p := range parts {
		if err := checkPartNumber(op, p.Number); err != nil {
			return err
		}
		if p.ETag == "" {
			etags = false
		}
		cps[i] = types.CompletedPart{
			PartNumber:     aws.Int32(int32(p.Number)),
			ETag:           aws.String(p.ETag),
			ChecksumSHA256: aws.String(b64(p.SHA256)),
		}
	}
	if !etags {
		// Only: is the object under key these parts (see sink.Sink)?
		proof, why, err := s.completed(ctx, op, key, parts)
		if err != nil {
			return err
		}
		if proof != madeOfParts {
			return &sink.Error{Class: sink.Permanent, Op: op, Code: "NoSuchUpload",
				Err: fmt.Errorf("upload %s: %w (%s)", uploadID, sink.ErrNotFound, why)}
		}
		return s.tagSHA256(ctx, op, key, sum)
	}
	_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(key),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cps},
		IfNoneMatch:     ifNoneMatch(ifAbsent),
	})
	err = classify(ctx, op, err)
	var e *sink.Error
	if err != nil && !errors.Is(err, sink.ErrExists) && !(errors.As(err, &e) && e.Code == "NoSuchUpload") {
		return err
	}
	// Before the object is tagged with sum, its composite checksum must
	// show it is made of the parts, whose bytes were hashed into sum. An
	// error above is a completion that already happened (its answer lost,
	// or a retry meeting its own object: If-None-Match is checked before
	// the upload's existence) only with that proof.
	proof, why, herr := s.completed(ctx, op, key, parts)
	switch {
	case herr != nil && err != nil:
		return err
	case herr != nil:
		return herr
	case err != nil && proof != madeOfParts:
		return err
	case proof == notMadeOfParts:
		// Completed, yet not of the parts sent: another writer's object
		// replaced it at once, or the store assembled something else.
		return &sink.Error{Class: sink.Permanent, Op: op, Code: "CompositeMismatch",
			Err: fmt.Errorf("%w: completed %q, but %s", sink.ErrChecksum, key, why)}
	}
	return s.tagSHA256(ctx, op, key, sum)
}

// What HeadObject shows of an object and a list of parts.
const (
	madeOfParts    = iota // size and composite checksum are the parts'
	notMadeOfParts        // they differ
	unproven              // the store reports no composite checksum
)

// completed tells whether the object under key is made of parts: its size
// and its composite checksum (S3's SHA-256 of the parts' SHA-256s, with
// their count) are theirs. why says what differs; err is a failure to ask.
func (s *Sink) completed(ctx context.Context, op, key string, parts []sink.Part) (proof int, why string, err error) {
	var size int64
	h := sha256.New()
	for _, p := range parts {
		size += p.Size
		h.Write(p.SHA256[:])
	}
	want := fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(h.Sum(nil)), len(parts))
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       aws.String(s.bucket),
		Key:          aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		var e *sink.Error
		if err = classify(ctx, op, err); errors.As(err, &e) && (e.Status == http.StatusNotFound || notFoundCodes[e.Code]) {
			return notMadeOfParts, "no object under the key", nil
		}
		return 0, "", err
	}
	got := aws.ToString(out.ChecksumSHA256)
	switch {
	case aws.ToInt64(out.ContentLength) != size:
		return notMadeOfParts, fmt.Sprintf("the object under the key has %d bytes, the parts %d", aws.ToInt64(out.ContentLength), size), nil
	case got == "":
		return unproven, "the object under the key has no SHA-256 checksum to compare the parts with", nil
	case got != want:
		return notMadeOfParts, fmt.Sprintf("the object under the key has checksum %s, the parts make %s", got, want), nil
	}
	return madeOfParts, "", nil
}

// tagSHA256 stores sum as the object's TagSHA256 tag.
func (s *Sink) tagSHA256(ctx context.Context, op, key string, sum sink.Digest) error {
	_, err := s.client.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
		Tagging: &types.Tagging{TagSet: []types.Tag{
			{Key: aws.String(TagSHA256), Value: aws.String(sum.Hex())},
		}},
	})
	if err == nil {
		return nil
	}
	err = classify(ctx, op, err)
	var e *sink.Error
	if errors.As(err, &e) {
		if errors.Is(err, sink.ErrChecksum) {
			// The tagging document is ferry's own, not the source's: a
			// mismatch is damage in transit, worth another try.
			e.Class = sink.Transient
		}
		// A store without tagging cannot keep ferry's sha256 contract
		// for objects sent in parts: say so plainly.
		e.Err = fmt.Errorf("storing the object's sha256 as its tag %q: %w", TagSHA256, e.Err)
	}
	return err
}

// ListParts implements sink.Sink, following the listing's pages. An upload
// that no longer exists (NoSuchUpload) matches sink.ErrNotFound.
func (s *Sink) ListParts(ctx context.Context, key, uploadID string) ([]sink.Part, error) {
	const op = "ListParts"
	if err := checkKey(op, key); err != nil {
		return nil, err
	}
	if err := checkUploadID(op, uploadID); err != nil {
		return nil, err
	}
	var parts []sink.Part
	var marker *string
	for {
		out, err := s.client.ListParts(ctx, &s3.ListPartsInput{
			Bucket:           aws.String(s.bucket),
			Key:              aws.String(key),
			UploadId:         aws.String(uploadID),
			PartNumberMarker: marker,
		})
		if err != nil {
			return nil, classify(ctx, op, err)
		}
		for _, p := range out.Parts {
			part := sink.Part{Number: int(aws.ToInt32(p.PartNumber)), Size: aws.ToInt64(p.Size), ETag: aws.ToString(p.ETag)}
			if b, err := base64.StdEncoding.DecodeString(aws.ToString(p.ChecksumSHA256)); err == nil && len(b) == len(part.SHA256) {
				copy(part.SHA256[:], b)
			}
			parts = append(parts, part)
		}
		if !aws.ToBool(out.IsTruncated) || aws.ToString(out.NextPartNumberMarker) == "" {
			break
		}
		marker = out.NextPartNumberMarker
	}
	sort.Slice(parts, func(a, b int) bool { return parts[a].Number < parts[b].Number })
	return parts, nil
}

// ListUploads implements sink.Sink with ListMultipartUploads, following
// the listing's pages.
func (s *Sink) ListUploads(ctx context.Context, prefix string) ([]sink.Upload, error) {
	const op = "ListUploads"
	var ups []sink.Upload
	var keyMarker, idMarker *string
	for {
		out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
			Bucket:         aws.String(s.bucket),
			Prefix:         aws.String(prefix),
			KeyMarker:      keyMarker,
			UploadIdMarker: idMarker,
		})
		if err != nil {
			return nil, classify(ctx, op, err)
		}
		for _, u := range out.Uploads {
			ups = append(ups, sink.Upload{Key: aws.ToString(u.Key), ID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)})
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		keyMarker, idMarker = out.NextKeyMarker, out.NextUploadIdMarker
		if aws.ToString(keyMarker) == "" && aws.ToString(idMarker) == "" {
			break
		}
	}
	return ups, nil
}

// AbortMultipart implements sink.Sink. NoSuchUpload is success.
func (s *Sink) AbortMultipart(ctx context.Context, key, uploadID string) error {
	const op = "AbortMultipart"
	if err := checkKey(op, key); err != nil {
		return err
	}
	if err := checkUploadID(op, uploadID); err != nil {
		return err
	}
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(s.bucket),
		Key:      aws.String(key),
		UploadId: aws.String(uploadID),
	})
	if err == nil {
		return nil
	}
	cerr := classify(ctx, op, err)
	if errorCode(cerr) == "NoSuchUpload" {
		return nil
	}
	return cerr
}

// Stat implements sink.Sink with HeadObject. SHA256 is the object's
// TagSHA256 tag when it was sent in parts (its ETag ends in -N; one more
// request, GetObjectTagging), else its "sha256" user metadata; "" when it
// has neither (e.g. not written by ferry).
func (s *Sink) Stat(ctx context.Context, key string) (sink.Info, error) {
	const op = "Stat"
	if err := checkKey(op, key); err != nil {
		return sink.Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		return sink.Info{}, classify(ctx, op, err)
	}
	info := sink.Info{
		Size:   aws.ToInt64(out.ContentLength),
		SHA256: metaSHA256(out.Metadata),
	}
	if strings.Contains(aws.ToString(out.ETag), "-") {
		tags, err := s.client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{
			Bucket: aws.String(s.bucket),
			Key:    aws.String(key),
		})
		if err != nil {
			err = classify(ctx, op, err)
			var e *sink.Error
			if errors.Is(err, sink.ErrNotFound) || !errors.As(err, &e) || e.Class != sink.Permanent {
				return sink.Info{}, err
			}
			// A store without object tagging: the metadata is all there is.
			return info, nil
		}
		for _, t := range tags.TagSet {
			if aws.ToString(t.Key) == TagSHA256 {
				// Set after completion from the bytes sent: it wins over
				// metadata set when the upload was created.
				info.SHA256 = strings.ToLower(aws.ToString(t.Value))
			}
		}
	}
	return info, nil
}

// List implements sink.Sink with ListObjectsV2, following its pages.
func (s *Sink) List(ctx context.Context, prefix string) ([]string, error) {
	const op = "List"
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(ctx, op, err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Get implements sink.Sink with GetObject.
func (s *Sink) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	const op = "Get"
	if err := checkKey(op, key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, classify(ctx, op, err)
	}
	defer out.Body.Close()
	if n := aws.ToInt64(out.ContentLength); n > max {
		return nil, sink.NewPermanent(op, fmt.Errorf("%s: %d bytes, at most %d expected: %w", key, n, max, sink.ErrTooLarge))
	}
	b, err := io.ReadAll(io.LimitReader(out.Body, max+1))
	if err != nil {
		return nil, classify(ctx, op, err)
	}
	if int64(len(b)) > max {
		return nil, sink.NewPermanent(op, fmt.Errorf("%s: more than %d bytes: %w", key, max, sink.ErrTooLarge))
	}
	return b, nil
}

// metaSHA256 returns the sha256 user metadata in lowercase hex, or "" when
// it is missing or malformed.
func metaSHA256(md map[string]string) string {
	v, ok := md[MetaSHA256]
	if !ok {
		// The SDK lower-cases header names; a server might not.
		for k, vv := range md {
			if len(k) == len(MetaSHA256) && http.CanonicalHeaderKey(k) == http.CanonicalHeaderKey(MetaSHA256) {
				v, ok = vv, true
				break
			}
		}
	}
	if !ok {
		return ""
	}
	d, err := sink.ParseDigest(v)
	if err != nil {
		return ""
	}
	return d.Hex()
}

// ifNoneMatch is the If-None-Match header of a create-only write.
func ifNoneMatch(ifAbsent bool) *string {
	if ifAbsent {
		return aws.String("*")
	}
	return nil
}

func b64(d sink.Digest) string { return base64.StdEncoding.EncodeToString(d[:]) }

// withPayloadHash makes the SigV4 signer use the known SHA-256 of the body
// as the payload hash instead of reading the body to compute it (over plain
// http) or sending UNSIGNED-PAYLOAD (over https). The SDK's payload-hash
// middleware skips its work when the hash is already set.
func withPayloadHash(d sink.Digest) func(*s3.Options) {
	h := d.Hex()
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("ferry:KnownPayloadHash",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (
					middleware.InitializeOutput, middleware.Metadata, error,
				) {
					return next.HandleInitialize(v4.SetPayloadHash(ctx, h), in)
				}), middleware.After)
		})
	}
}

func checkKey(op, key string) error {
	var why string
	switch {
	case key == "":
		why = "empty"
	case len(key) > MaxKeyLen:
		why = fmt.Sprintf("%d bytes, more than %d", len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		why = "not valid UTF-8"
	default:
		return nil
	}
	return sink.NewPermanent(op, fmt.Errorf("%w %q: %s", ErrInvalidKey, truncate(key, 64), why))
}

func checkUploadID(op, id string) error {
	if id == "" {
		return sink.NewPermanent(op, errors.New("empty upload id"))
	}
	return nil
}

func checkPartNumber(op string, n int) error {
	if n < 1 || n > 10000 {
		return sink.NewPermanent(op, fmt.Errorf("part number %d outside 1..10000", n))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// rateLimitTransport reports the rate-limit headers of every response.
type rateLimitTransport struct {
	base   http.RoundTripper
	report func(sink.RateLimit)
}

func (t *rateLimitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		if rl, ok := parseRateLimit(resp.Header, time.Now()); ok {
			t.report(rl)
		}
	}
	return resp, err
}

// parseRateLimit reads X-RateLimit-Remaining and X-RateLimit-Reset. Reset
// is delta-seconds, or Unix seconds when it is that large (both are in use).
func parseRateLimit(h http.Header, now time.Time) (sink.RateLimit, bool) {
	rem, err := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Remaining")))
	if err != nil || rem < 0 {
		return sink.RateLimit{}, false
	}
	reset, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 10, 64)
	if err != nil || reset < 0 {
		return sink.RateLimit{}, false
	}
	at := now.Add(time.Duration(reset) * time.Second)
	if reset > 1_000_000_000 {
		at = time.Unix(reset, 0)
	}
	if at.Sub(now) > 24*time.Hour {
		at = now.Add(24 * time.Hour)
	}
	return sink.RateLimit{Remaining: rem, Reset: at}, true
}

// userMetadata is an object's user metadata: its sha256, and what the
// caller asked for (sink.WithObjectMetadata: a dataset's validation
// status and schema version), never replacing sha256.
func userMetadata(ctx context.Context, sum *sink.Digest) map[string]string {
	m := map[string]string{}
	for k, v := range sink.ObjectMetadataOf(ctx) {
		m[strings.ToLower(k)] = v
	}
	if sum != nil {
		m[MetaSHA256] = sum.Hex()
	}
	return m
}
