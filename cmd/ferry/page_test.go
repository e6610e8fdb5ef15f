package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/internal/testsrv"
)

// pagePaths are every path the metrics listener serves.
var pagePaths = []string{"/", "/status", "/deadletters", "/datasets", "/held", "/throughput", "/metrics", "/healthz"}

// TestOperatorPageKeepsSecrets runs a daemon whose S3 target and webhook
// have secrets in the environment, and reads every endpoint of its
// listener: no secret value appears in any of them.
func TestOperatorPageKeepsSecrets(t *testing.T) {
	addr := testsrv.FreeAddr(t)
	dead := testsrv.FreeAddr(t) // nothing listens there: the target is down
	secrets := map[string]string{
		"PAGE_S3_ACCESS_KEY": "AKIA-page-access-7f3e9c1d",
		"PAGE_S3_SECRET_KEY": "page-secret-key-0b8d2f6a4e",
		"PAGE_HOOK_SECRET":   "page-hook-hmac-5c1e7a93",
	}
	cfg := testcfg.Write(t, fmt.Sprintf(`[journal]
path = "ferry.db"
[log]
file = "ferry.log"
[metrics]
listen = %q
[target.s3]
type = "s3"
endpoint = "http://%s"
bucket = "b"
access_key_env = "PAGE_S3_ACCESS_KEY"
secret_key_env = "PAGE_S3_SECRET_KEY"
[[watch]]
path = "in"
target = "s3"
settle = "100ms"
[[notify]]
url = "http://%s/hook"
secret_env = "PAGE_HOOK_SECRET"
`, addr, dead, dead))
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "in", "a.bin"), []byte("page"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var out, errb strings.Builder
	go func() { done <- run(ctx, []string{"run", "--config", cfg}, &out, &errb, testcfg.Env(secrets)) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("daemon exit %d: %s%s", code, out.String(), errb.String())
		}
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Wait until the upload has been tried (and failed: the target is
	// down), so that the status carries an error message too.
	testsrv.Eventually(t, e2eWait, "an upload attempt to show in /status", func() (bool, string) {
		code, body := get("/status")
		return code == 200 && strings.Contains(body, `"last_error":{`), body
	})
	for _, p := range pagePaths {
		code, body := get(p)
		if code != 200 {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
		for name, v := range secrets {
			if strings.Contains(body, v) {
				t.Errorf("GET %s shows the value of %s", p, name)
			}
		}
	}
	if code, _ := get("/nosuch"); code != 404 {
		t.Errorf("GET /nosuch: %d, want 404", code)
	}
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405 (the page is read-only)", resp.StatusCode)
	}
	// The page loads nothing from elsewhere.
	_, page := get("/")
	for _, bad := range []string{"src=\"http", "href=\"http", "src='http", "@import", "url(http", "//cdn", "fonts.g"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page refers to an external asset (%q)", bad)
		}
	}
}

// chromium finds Debian's chromium: in CI (CI=true) its absence is a
// failure, elsewhere a skip.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (.ci/run installs Debian's chromium): the operator's page is not tested")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the operator's page is not tested in a browser")
	return ""
}

// TestOperatorPageInBrowser loads the page in headless chromium while a
// real upload to versitygw is held at 2 of 4 parts behind a proxy and a
// file was dead-lettered, and reads what a person would see.
func TestOperatorPageInBrowser(t *testing.T) {
	browser := chromium(t)
	srv := testsrv.StartS3(t)
	e := e2eSetup(t, srv, "page", true)
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "denied") {
			io.Copy(io.Discard, r.Body)
			e2eS3Error(w, http.StatusForbidden, "AccessDenied")
			return true
		}
		if n, _ := strconv.Atoi(r.URL.Query().Get("partNumber")); r.Method == http.MethodPut && n >= 3 {
			select { // parts 1 and 2 land; the rest wait
			case <-release:
			case <-r.Context().Done():
			}
		}
		return false
	})
	addr := testsrv.FreeAddr(t)
	c := e.config()
	c.Endpoint = endpoint
	text := e.writeConfig(c) + fmt.Sprintf("[metrics]\nlisten = %q\n", addr)
	if err := os.WriteFile(e.cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := e.startDaemon()
	defer func() {
		releaseAll()
		if d == nil {
			return
		}
		if code, _ := d.stop(t); code != 0 {
			t.Errorf("daemon exit %d", code)
		}
	}()
	e2eWriteFiles(t, e.watch, map[string][]byte{"a.bin": e2eData(1, 1000), "denied.bin": e2eData(2, 100), "run/big.bin": e2eData(3, 4*e2eChunk+7)})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox)
	actx, acancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatal(err)
	}
	// read is what the page shows now, as text, by part.
	read := func() (map[string]string, error) {
		ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		return chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`(function(){
			function txt(sel){var e=document.querySelector(sel);return e?e.innerText:""}
			var b=document.querySelector("#inflight tr.upload svg[role=progressbar]");
			return {progress:b?b.getAttribute("aria-valuenow"):"", upload:txt("#inflight tbody"), rate:txt("#rate"),
				breakers:txt("#breakers tbody"), dead:txt("#deadletters tbody"), watches:txt("#watches tbody"), held:txt("#held tbody"), health:txt("#health"), waiting:txt("#waiting"),
				datasetsHidden:String(document.getElementById("datasets-section").hidden),
				unreachable:getComputedStyle(document.getElementById("unreachable")).display}})()`))
	}
	// The page refreshes itself: wait, without reloading, for the held
	// upload at 50% and the dead letter.
	var got map[string]string
	testsrv.Eventually(t, e2eWait, "the page to show the held upload and the dead letter", func() (bool, string) {
		var err error
		if got, err = read(); err != nil {
			return false, err.Error()
		}
		return got["progress"] == "50" && strings.Contains(got["dead"], "AccessDenied"), fmt.Sprint(got)
	})
	for _, c := range []struct{ part, want string }{
		{"upload", "run/big.bin"},
		{"upload", "50.0% of 20.0 MiB"},
		{"upload", "/s"},
		{"rate", "rate "},
		{"breakers", "s3\tclosed"},
		{"dead", "denied.bin"},
		{"dead", "permanent"},
		{"health", "needs attention"},
		{"waiting", "1 files (20.0 MiB) waiting"},
		{"datasetsHidden", "false"}, // the status has a datasets field
		{"watches", "\tup\t"},
		{"held", "none"},
		{"unreachable", "none"},
	} {
		if !strings.Contains(got[c.part], c.want) {
			t.Errorf("%s: %q, want it to contain %q", c.part, got[c.part], c.want)
		}
	}
	if strings.Contains(got["rate"], "rate –") {
		t.Errorf("overall rate unknown while a file moves: %q", got["rate"])
	}
	if p := os.Getenv("FERRY_PAGE_SCREENSHOT"); p != "" {
		if shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)); err == nil {
			os.WriteFile(p, shot, 0o644)
		}
	}

	// ferry goes away: the page says so.
	releaseAll()
	if code, _ := d.stop(t); code != 0 {
		t.Errorf("daemon exit %d", code)
	}
	d = nil
	testsrv.Eventually(t, e2eWait, "the page to say ferry is not reachable", func() (bool, string) {
		got, err := read()
		if err != nil {
			return false, err.Error()
		}
		return got["unreachable"] == "block" && got["health"] == "unknown", fmt.Sprint(got)
	})
}
