package pace

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestReadersShareTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(1 << 20) // 1 MiB/s for everyone
		start := time.Now()
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := io.Copy(io.Discard, p.Reader(context.Background(), bytes.NewReader(make([]byte, 2<<20))))
				if err != nil || n != 2<<20 {
					t.Errorf("copied %d, %v", n, err)
				}
			}()
		}
		wg.Wait()
		// 8 MiB at 1 MiB/s, less the initial burst of one slice.
		if d := time.Since(start); d < 7900*time.Millisecond || d > 8100*time.Millisecond {
			t.Fatalf("8 MiB through a shared 1 MiB/s limit took %v, want about 8 s", d)
		}
	})
}

func TestNilIsNoLimit(t *testing.T) {
	var p *Limiter = New(0)
	r := bytes.NewReader([]byte("x"))
	if p.Reader(context.Background(), r) != r || p.Wait(context.Background(), 1<<30) != nil {
		t.Fatal("a zero limit limits")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p.Wait(ctx, 1) == nil {
		t.Fatal("a zero limit limits")
	}
}

func TestWaitStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(1024)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := p.Wait(ctx, 1<<20); err == nil {
			t.Fatal("Wait for 1 MiB at 1 KiB/s returned within a second")
		}
	})
}
