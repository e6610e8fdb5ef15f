package s3sink

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferry-data/ferry/internal/cputime"
	"github.com/ferry-data/ferry/internal/testsrv"
)

// BenchmarkPutSmall: the request path of a small file alone, 16 KiB
// bodies sent with Put (one PutObject with its SHA-256 and metadata), 4
// at once, against versitygw on loopback. It reports the client's CPU
// (this process's user + system, the server runs apart) per PUT: what
// the SDK, signing and net/http cost ferry per small file.
//
//	go test ./uploader/sink/s3sink -run '^$' -bench PutSmall -benchtime 5000x
func BenchmarkPutSmall(b *testing.B) {
	srv := testsrv.StartS3(b)
	srv.CreateBucket(b, "bench")
	s := newSinkFor(b, srv, "bench")
	body := make([]byte, 16<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	sum := sha256.Sum256(body)
	ctx := context.Background()
	var next atomic.Int64
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0, measured := cputime.Self()
	for range 4 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := s.Put(ctx, fmt.Sprintf("run/f%07d.bin", i), body, sum, false); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	cpu1, _ := cputime.Self()
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	if measured {
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/put")
	}
}
