//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-data/ferry/dataset"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/notify"
)

// dsReceiver is a LIMS in test code: it records every delivery and
// acknowledges it.
type dsReceiver struct {
	secret []byte
	mu     sync.Mutex
	got    []dsDelivery
}

type dsDelivery struct {
	id, event string
	signed    bool
	body      map[string]any
}

func (r *dsReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var body map[string]any
	json.Unmarshal(b, &body)
	r.mu.Lock()
	r.got = append(r.got, dsDelivery{id: req.Header.Get(notify.HeaderIdempotency), event: req.Header.Get(notify.HeaderEvent),
		signed: notify.Verify(r.secret, b, req.Header.Get(notify.HeaderSignature)), body: body})
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *dsReceiver) deliveries() []dsDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dsDelivery(nil), r.got...)
}

// TestDatasetsOfASequencerRun is issue 12's end-to-end case: run folders
// shaped like a sequencer's, the real ferry binary killed with SIGKILL in
// the middle of the uploads and started again, versitygw as the target and
// a real HTTP receiver. The run with CopyComplete.txt written last closes:
// its manifest and crate land after every file and match the files'
// hashes, and its dataset_complete reaches the receiver exactly once,
// signed. A run without its marker stays open; a run whose
// RunCompletionStatus.xml says it failed ends failed_run, reported as
// dataset_failed with the instrument's reason.
func TestDatasetsOfASequencerRun(t *testing.T) {
	const bucket = "datasets"
	srv := testsrv.StartS3(t)
	srv.CreateBucket(t, bucket)
	bin := benchBuild(t)
	rcv := &dsReceiver{secret: []byte("lims-hmac-key")}
	lims := httptest.NewServer(rcv)
	defer lims.Close()

	dir := t.TempDir()
	watch := filepath.Join(dir, "Output")
	files := map[string][]byte{}
	write := func(rel string, b []byte) {
		t.Helper()
		files[rel] = b
		p := filepath.Join(watch, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const runA, runB, runC = "261203_LH00001_0042_A22XYZLT3", "261203_LH00001_0043_B22XYZLT3", "261203_LH00001_0044_C22XYZLT3"
	write(runA+"/RunInfo.xml", []byte(`<?xml version="1.0"?><RunInfo><Run Id="`+runA+`" Number="42"/></RunInfo>`))
	for lane := 1; lane <= 2; lane++ {
		for cycle := 1; cycle <= 40; cycle++ {
			for tile := 1; tile <= 12; tile++ {
				write(fmt.Sprintf("%s/Data/Intensities/BaseCalls/L%03d/C%d.1/L%03d_%d.cbcl", runA, lane, cycle, lane, tile),
					e2eData(uint64(lane*100000+cycle*100+tile), 512+tile*37))
			}
		}
	}
	for i := range 20 {
		write(fmt.Sprintf("%s/InterOp/metrics-%02d.bin", runB, i), e2eData(uint64(900+i), 2000))
	}
	for i := range 10 {
		write(fmt.Sprintf("%s/Data/file-%02d.bin", runC, i), e2eData(uint64(700+i), 3000))
	}
	write(runC+"/"+dataset.RunCompletionStatus, []byte(`<?xml version="1.0" encoding="utf-8"?>
<RunCompletionStatus><RunStatus>RunErrored</RunStatus><RunError><Type>RecipeExecutionFailedException</Type><Message>I/O data integrity check failed</Message></RunError></RunCompletionStatus>`))
	write(runC+"/"+dataset.CopyComplete, nil)

	cfg := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[journal]
path = "state/ferry.db"
[log]
file = "logs/ferry.log"
level = "info"
[upload]
max_concurrent_uploads = 4
[target.s3]
type = "s3"
endpoint = %q
bucket = %q
access_key_env = "DS_AK"
secret_key_env = "DS_SK"
prefix = "runs/"
[[watch]]
path = "Output"
target = "s3"
settle = "300ms"
dataset = "*"
complete = "illumina"
license = "CC-BY-4.0"
after_upload = "delete"
[[notify]]
url = %q
events = ["dataset_complete", "dataset_failed", "file_failed"]
secret_env = "DS_HOOK_SECRET"
`, srv.Endpoint, bucket, lims.URL+"/hooks/ferry?token=abc")), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "DS_AK="+srv.AccessKey, "DS_SK="+srv.SecretKey, "DS_HOOK_SECRET="+string(rcv.secret))
	logTail := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "logs", "ferry.log"))
		return crashTail(b, 6000)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	count := func(prefix string) int {
		n := 0
		for k := range e2eList(t, srv, bucket) {
			if strings.HasPrefix(k, prefix) {
				n++
			}
		}
		return n
	}

	// Streaming: files land long before the run ends. Kill ferry in the
	// middle of them.
	first := start()
	testsrv.Eventually(t, 60*time.Second, "some of the run's files to land", func() (bool, string) {
		n := count("runs/" + runA + "/")
		return n >= 200, fmt.Sprintf("%d objects\n%s", n, logTail())
	})
	first.Process.Kill() // SIGKILL
	first.Wait()
	if n := count("runs/" + runA + "/"); n >= len(files)-30 {
		t.Logf("note: %d of the run's objects had landed at the kill", n)
	}
	if n := count("runs/" + runA + "/" + dataset.CrateName); n != 0 {
		t.Fatal("a crate landed before the run was complete")
	}

	second := start()
	// The instrument finishes: CopyComplete.txt is written last.
	write(runA+"/"+dataset.CopyComplete, nil)
	crateA := "runs/" + runA + "/" + dataset.CrateName
	crateC := "runs/" + runC + "/" + dataset.CrateName
	testsrv.Eventually(t, 120*time.Second, "both complete runs to close, be announced and leave the instrument's disk", func() (bool, string) {
		objs := e2eList(t, srv, bucket)
		_, a := objs[crateA]
		_, c := objs[crateC]
		_, errA := os.Stat(filepath.Join(watch, runA))
		_, errC := os.Stat(filepath.Join(watch, runC))
		gone := os.IsNotExist(errA) && os.IsNotExist(errC)
		return a && c && gone && len(rcv.deliveries()) >= 2, fmt.Sprintf("crate A %v, crate C %v, sources gone %v, deliveries %d\n%s", a, c, gone, len(rcv.deliveries()), logTail())
	})
	// The open run's files stay where the instrument wrote them.
	for rel := range files {
		if strings.HasPrefix(rel, runB+"/") {
			if _, err := os.Stat(filepath.Join(watch, filepath.FromSlash(rel))); err != nil {
				t.Errorf("a file of the open run was touched: %v", err)
			}
		}
	}
	second.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("ferry did not stop within 15 s of SIGTERM")
	}

	// The manifest lists every file of the run with its hash, and the
	// objects match it.
	ctx := context.Background()
	objs := e2eList(t, srv, bucket)
	manifest, _, err := e2eGet(srv, bucket, "runs/"+runA+"/"+dataset.ManifestName)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := dataset.ParseManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var keysA []string
	for rel, b := range files {
		inside, ok := strings.CutPrefix(rel, runA+"/")
		if !ok {
			continue
		}
		s := sha256.Sum256(b)
		if sums[inside] != hex.EncodeToString(s[:]) {
			t.Errorf("manifest: %s = %q, want its SHA-256", inside, sums[inside])
		}
		keysA = append(keysA, "runs/"+rel)
		if _, ok := objs["runs/"+rel]; !ok {
			t.Errorf("%s did not land", rel)
		}
	}
	if len(sums) != len(keysA) {
		t.Errorf("manifest lists %d files, the run has %d", len(sums), len(keysA))
	}
	// Written last: the crate's object is newer than every file's and the
	// manifest's (backend mtimes, nanoseconds).
	mt := e2eBackendMtimes(t, srv, bucket, append(keysA, "runs/"+runA+"/"+dataset.ManifestName, crateA))
	for _, k := range append(keysA, "runs/"+runA+"/"+dataset.ManifestName) {
		if mt[k].After(mt[crateA]) {
			t.Errorf("%s landed after the crate (%v > %v)", k, mt[k], mt[crateA])
		}
	}
	crate, _, err := e2eGet(srv, bucket, crateA)
	if err != nil || !json.Valid(crate) || !bytes.Contains(crate, []byte(`"https://spdx.org/licenses/CC-BY-4.0"`)) {
		t.Fatalf("crate: %v\n%.400s", err, crate)
	}
	// The run without its marker stays open: no manifest, no crate.
	if _, ok := objs["runs/"+runB+"/"+dataset.ManifestName]; ok {
		t.Error("a run without its completion marker was closed")
	}

	// Exactly one announcement per closed run, signed, despite the kill.
	byID := map[string][]dsDelivery{}
	for _, d := range rcv.deliveries() {
		byID[d.id] = append(byID[d.id], d)
		if !d.signed {
			t.Errorf("delivery %s %s: signature does not verify", d.event, d.id)
		}
	}
	var sawA, sawC bool
	for id, ds := range byID {
		d := ds[0]
		data, _ := d.body["data"].(map[string]any)
		switch data["dataset"] {
		case runA:
			sawA = true
			if len(ds) != 1 || d.event != notify.DatasetComplete || data["state"] != "closed" || d.body["id"] != id {
				t.Errorf("run A announced %d times: %+v", len(ds), ds)
			}
		case runC:
			sawC = true
			if len(ds) != 1 || d.event != notify.DatasetFailed || data["state"] != "failed_run" || !strings.Contains(fmt.Sprint(data["reason"]), "I/O data integrity check failed") {
				t.Errorf("run C: %+v", ds)
			}
		default:
			t.Errorf("unexpected delivery: %+v", ds)
		}
	}
	if !sawA || !sawC {
		t.Fatalf("deliveries: %+v", byID)
	}

	j, err := journal.Open(filepath.Join(dir, "state", "ferry.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := j.Datasets(ctx, journal.DatasetFilter{})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]journal.DatasetState{}
	for _, d := range ds {
		states[d.RelPath] = d.State
	}
	if states[runA] != journal.DatasetClosed || states[runB] != journal.DatasetOpen || states[runC] != journal.DatasetFailedRun {
		t.Errorf("dataset states: %v", states)
	}
	if p, _ := j.PendingNotifications(ctx); len(p) != 0 {
		t.Errorf("notifications still pending: %+v", p)
	}
	if _, err := j.VerifyChain(ctx); err != nil {
		t.Errorf("event chain: %v", err)
	}
	j.Close()

	// What facility staff see: ferry datasets and ferry dataset show.
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--config", cfg)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ferry %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var listed []struct {
		ID, State string
		Files     int    `json:"files"`
		Landed    int    `json:"files_landed"`
		Manifest  string `json:"manifest_key"`
	}
	if err := json.Unmarshal([]byte(cli("datasets", "--json")), &listed); err != nil || len(listed) != 3 {
		t.Fatalf("ferry datasets --json: %v %+v", err, listed)
	}
	for _, d := range listed {
		if d.ID == runA && (d.State != "closed" || d.Landed != d.Files || d.Files != len(keysA) || d.Manifest != "runs/"+runA+"/"+dataset.ManifestName) {
			t.Errorf("ferry datasets: %+v", d)
		}
	}
	if out := cli("datasets", "--state", "open"); !strings.Contains(out, runB) || strings.Contains(out, runA) {
		t.Errorf("ferry datasets --state open:\n%s", out)
	}
	// The audit trail: the datasets as they stood, from the events, and
	// the tables agree with the events.
	state := cli("journal", "state", "--at", time.Now().UTC().Add(time.Minute).Format(time.RFC3339))
	if !strings.Contains(state, runA) || !strings.Contains(state, "failed_run") || !strings.Contains(state, "(3 datasets;") {
		t.Errorf("ferry journal state:\n%.2000s", state[max(0, len(state)-2000):])
	}
	cli("journal", "verify")
	show := cli("dataset", "show", runC)
	for _, want := range []string{"failed_run", "I/O data integrity check failed", "dataset_failed to", "delivered", dataset.RunCompletionStatus,
		"after_upload = \"delete\": 12 deleted, 0 waiting for their checks, 0 kept"} {
		if !strings.Contains(show, want) {
			t.Errorf("ferry dataset show lacks %q:\n%s", want, show)
		}
	}

	// The crate, with the objects it describes, passes the RO-Crate
	// validator (npm's ro-crate).
	crateDir := t.TempDir()
	for k := range objs {
		inside, ok := strings.CutPrefix(k, "runs/"+runA+"/")
		if !ok {
			continue
		}
		b, _, err := e2eGet(srv, bucket, k)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(crateDir, filepath.FromSlash(inside))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testsrv.ValidateCrate(t, crateDir)

	logText := mustRead(t, filepath.Join(dir, "logs", "ferry.log"))
	if p := os.Getenv("FERRY_DS_LOG"); p != "" {
		os.WriteFile(p, []byte(logText), 0o644)
	}
	if strings.Contains(logText, "token=abc") {
		t.Error("the notify URL's token reached the log")
	}
	for _, l := range strings.Split(logText, "\n") {
		if strings.Contains(l, `"msg":"dataset`) || strings.Contains(l, `"msg":"notification`) {
			t.Log(l)
		}
	}
}
