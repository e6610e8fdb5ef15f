//go:build !windows

package service

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
)

// serveUnderManager with the real kardianos service for this machine (its
// Run waits in RunWait on every system but Windows): a stop (SIGTERM, which
// ferry run turns into ctx) ends body with its code; a body that fails by
// itself ends the service with its exit code, for Restart=on-failure.
// (On Windows, Run outside the service control manager waits for Ctrl-C.)
func TestServiceServeUnderManager(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("stopped", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		started := make(chan struct{})
		var sawCancel atomic.Bool
		go func() { <-started; cancel() }()
		code := serveUnderManager(ctx, log, func(ctx context.Context, _ *slog.Logger) int {
			close(started)
			<-ctx.Done()
			sawCancel.Store(true)
			return ExitOK
		})
		if code != ExitOK || !sawCancel.Load() {
			t.Errorf("exit %d, body saw the cancel: %v", code, sawCancel.Load())
		}
	})
	t.Run("SIGTERM", func(t *testing.T) {
		// What systemd's stop sends; ferry run turns it into ctx.
		ctx, stop := signal.NotifyContext(t.Context(), syscall.SIGTERM)
		defer stop()
		code := serveUnderManager(ctx, log, func(ctx context.Context, _ *slog.Logger) int {
			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
				t.Error(err)
				return ExitFailed
			}
			<-ctx.Done()
			return ExitOK
		})
		if code != ExitOK {
			t.Errorf("exit %d after SIGTERM", code)
		}
	})
	t.Run("fails on its own", func(t *testing.T) {
		code := serveUnderManager(t.Context(), log, func(ctx context.Context, _ *slog.Logger) int {
			return ExitFailed
		})
		if code != ExitFailed {
			t.Errorf("exit %d, want %d", code, ExitFailed)
		}
	})
}
