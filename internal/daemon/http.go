package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-data/ferry/internal/daemon/page"
)

// handler serves /metrics (the registry), /healthz and /status (the
// StatusSource), and the operator's page at / with the JSON it reads
// (/deadletters, /datasets, /throughput).
func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/{$}", page.Handler())
	m.pageHandlers(mux)
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		hctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := m.src.Healthy(hctx); err != nil {
			http.Error(w, "journal cannot be written: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		sctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		st, err := m.src.Status(sctx, m.now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	return mux
}

// serve runs the endpoints until ctx ends. A port that cannot be bound is
// logged, and ferry goes on without them: uploading matters more.
func (m *metrics) serve(ctx context.Context, listen string, log *slog.Logger) {
	if listen == "" {
		return
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		log.Error("cannot serve metrics; going on without them", "listen", listen, "error", err.Error())
		return
	}
	go m.sampleThroughput(ctx)
	srv := &http.Server{Handler: m.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("serving metrics", "listen", ln.Addr().String(), "paths", "/ /metrics /healthz /status /deadletters /datasets /throughput")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics server stopped", "error", err.Error())
	}
}
