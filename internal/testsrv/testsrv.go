// Package testsrv starts real servers on the loopback interface for tests.
//
// StartS3 runs a versitygw (github.com/versity/versitygw) S3 gateway with a
// posix backend in a temporary directory. The binary is found through the
// environment variable FERRY_VERSITYGW, then PATH, then $(go env GOPATH)/bin.
// When it is missing the test is skipped, or fails when the environment
// variable CI is set, so CI cannot pass by skipping.
package testsrv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// VersitygwVersion is the versitygw release the tests are written against.
const VersitygwVersion = "v1.8.0"

// InstallHint tells how to install the versitygw binary StartS3 needs.
const InstallHint = "versitygw not found: install it with `go install github.com/versity/versitygw/cmd/versitygw@" +
	VersitygwVersion + "` or set FERRY_VERSITYGW to its path"

const (
	startTimeout = 15 * time.Second // for one server to answer
	startTries   = 3                // ports tried before giving up
	pollEvery    = 20 * time.Millisecond
)

// S3 is a running versitygw server. Its credentials are those of the
// gateway's root account.
type S3 struct {
	Endpoint  string // "http://127.0.0.1:PORT"
	AccessKey string
	SecretKey string
	Region    string
	Root      string // the posix backend directory; each bucket is a subdirectory

	client *s3.Client
}

// StartS3 starts a versitygw S3 server on 127.0.0.1 with an empty posix
// backend in a temporary directory, waits until it answers, and stops it
// when t's test ends. The server's output is logged if the test fails.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin, err := findVersitygw()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("testsrv: %v", err)
		}
		t.Skipf("testsrv: %v", err)
	}

	s := &S3{
		AccessKey: "AK",
		SecretKey: "SK",
		Region:    "us-east-1",
		Root:      t.TempDir(), // removed after the server is stopped (cleanups run LIFO)
	}
	var lastErr error
	for try := 0; try < startTries; try++ {
		addr, err := freeLoopbackAddr()
		if err != nil {
			t.Fatalf("testsrv: %v", err)
		}
		p, err := startProcess(bin, addr, s)
		if err != nil {
			t.Fatalf("testsrv: %v", err)
		}
		if err = p.waitReady(addr, startTimeout); err != nil {
			p.stop()
			lastErr = fmt.Errorf("versitygw on %s: %w\n%s", addr, err, p.out.String())
			continue
		}
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				t.Logf("versitygw output:\n%s", p.out.String())
			}
		})
		s.Endpoint = "http://" + addr
		s.client = newClient(s.Endpoint, s.Region, s.AccessKey, s.SecretKey)
		return s
	}
	t.Fatalf("testsrv: versitygw did not come up after %d tries: %v", startTries, lastErr)
	return nil
}

// Client returns an S3 client for the server, configured like ferry's S3
// sink (path-style, static credentials, no retries, checksums only where
// required), for making assertions.
func (s *S3) Client() *s3.Client { return s.client }

// CreateBucket creates a bucket through the S3 API, failing t on error.
func (s *S3) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testsrv: CreateBucket %q: %v", name, err)
	}
}

// findVersitygw locates the versitygw binary.
func findVersitygw() (string, error) {
	if p := os.Getenv("FERRY_VERSITYGW"); p != "" {
		if err := isExecutable(p); err != nil {
			return "", fmt.Errorf("FERRY_VERSITYGW=%s: %w; %s", p, err, InstallHint)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	name := "versitygw"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	for _, gopath := range gopaths() {
		p := filepath.Join(gopath, "bin", name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", errors.New(InstallHint)
}

// gopaths returns the GOPATH entries, asking the go command first.
func gopaths() []string {
	gp := ""
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gp = strings.TrimSpace(string(out))
	}
	if gp == "" {
		gp = build.Default.GOPATH
	}
	return filepath.SplitList(gp)
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not executable")
	}
	return nil
}

// freeLoopbackAddr returns a 127.0.0.1 address whose port was free a moment
// ago. Another process may take it before versitygw does: StartS3 retries.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", err
	}
	return addr, nil
}

// process is one versitygw child process.
type process struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{} // closed when Wait returned
	err    error         // Wait's result, valid after exited is closed
	once   sync.Once
}

func startProcess(bin, addr string, s *S3) (*process, error) {
	cmd := exec.Command(bin,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--port", addr,
		"--quiet",
		"--keep-alive",
		"posix", s.Root,
	)
	p := &process{cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	cmd.Env = childEnv()
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// childEnv is the environment without versitygw's own settings, so that a
// developer's VGW_* or ROOT_* variables cannot change the test server.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitReady polls until the server answers an HTTP request on addr, the
// process exits, or timeout passes. Polling is fine here: it waits for a
// process to start, not for timer logic.
func (p *process) waitReady(addr string, timeout time.Duration) error {
	hc := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	deadline := time.Now().Add(timeout)
	url := "http://" + addr + "/"
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			// Any S3 answer (403 without credentials) will do, as long
			// as it comes from versitygw and not from whatever else
			// might have taken the port.
			if resp.Header.Get("Server") == "VERSITYGW" {
				return nil
			}
			return fmt.Errorf("port answered by something else (Server: %q)", resp.Header.Get("Server"))
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited: %v", p.err)
		case <-time.After(pollEvery):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %v", timeout, err)
		}
	}
}

// stop kills the process and waits for it to exit.
func (p *process) stop() {
	p.once.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a child's
// stdout and stderr and reads by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newClient returns an S3 client for the test server.
func newClient(endpoint, region, accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, Source: "testsrv"}, nil
		}),
		UsePathStyle:               true,
		Retryer:                    aws.NopRetryer{},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient:                 &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}},
	})
}

// ObjectSHA256 returns the whole-object SHA-256 ferry stored with key, found
// as the README tells a reader to: the object tag "sha256" (an object sent
// in parts), else the user metadata "sha256" (metadata, as HeadObject or
// GetObject returned it); "" when it has neither.
func ObjectSHA256(ctx context.Context, c *s3.Client, bucket, key string, metadata map[string]string) (string, error) {
	tags, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", fmt.Errorf("GetObjectTagging %s: %w", key, err)
	}
	for _, t := range tags.TagSet {
		if aws.ToString(t.Key) == "sha256" {
			return aws.ToString(t.Value), nil
		}
	}
	return metadata["sha256"], nil
}
