// Package page is the operator's page: one read-only HTML page, built
// into the binary with no external assets, that the metrics listener
// serves at "/". Its script polls the same server's JSON endpoints
// (/status, /deadletters, /throughput) every few seconds.
package page

import (
	_ "embed"
	"net/http"
)

//go:embed index.html
var index []byte

// Handler serves the page at "/" (and 404 for any other path it is given).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		// Only this server: no fonts, scripts or images from elsewhere.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(index)
	})
}
