package uploader

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
)

// The sizes that take each path: preloaded by the dispatcher, one request
// read by the worker, multipart.
var pathSizes = []int{100, testChunk - 5, 2*testChunk + 3}

func hexOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// rewrite replaces a source file's content in place (same inode).
func (e *env) rewrite(rel string, data []byte) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.watch, filepath.FromSlash(rel)), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) noStagedUploads() {
	e.t.Helper()
	if n := e.mem.Uploads(); n != 0 {
		e.t.Errorf("%d multipart uploads left open", n)
	}
}

// on_change = "version": each new content lands under its own key, the
// base key keeps the first content, and a touch (same content, new mtime)
// sends nothing, neither to the versioned key nor over the base key.
func TestVersionPolicyNeverOverwritesTheOriginal(t *testing.T) {
	for _, size := range pathSizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			e := newEnv(t)
			a, b, c := randBytes(size, 40), randBytes(size+1, 41), randBytes(size+2, 42)
			run := func() { e.t.Helper(); e.u = e.uploaderWith(Version); e.drain() }
			e.add("v.txt", a)
			run()
			e.rewrite("v.txt", b)
			e.add("v.txt", b)
			run()
			kb, _ := VersionedKey("v.txt", hexOf(b))
			if r := e.row("v.txt"); r.State != journal.Uploaded || r.UploadedKey != kb || r.UploadedSHA256 != hexOf(b) {
				t.Fatalf("after the change: %+v, want uploaded at %s", r, kb)
			}
			// A touch: same content, new mtime.
			later := time.Now().Add(time.Hour)
			os.Chtimes(filepath.Join(e.watch, "v.txt"), later, later)
			e.add("v.txt", b)
			writes := e.sink.count("Put") + e.sink.count("CompleteMultipart")
			run()
			if n := e.sink.count("Put") + e.sink.count("CompleteMultipart") - writes; n != 0 {
				t.Errorf("a touch wrote %d objects", n)
			}
			if r := e.row("v.txt"); r.State != journal.Uploaded || r.UploadedKey != kb {
				t.Errorf("after the touch: %+v", r)
			}
			// A third content gets a third key.
			e.rewrite("v.txt", c)
			e.add("v.txt", c)
			run()
			kc, _ := VersionedKey("v.txt", hexOf(c))
			if !bytes.Equal(e.stored("v.txt"), a) || !bytes.Equal(e.stored(kb), b) || !bytes.Equal(e.stored(kc), c) {
				t.Fatal("the base key must keep the first content and each new content its own key")
			}
			if r := e.row("v.txt"); r.UploadedKey != kc {
				t.Errorf("after the third content: %+v", r)
			}
			// The versioned object gone from the target: a touch sends it
			// again, to its own key, not over the original.
			e.mem.Delete(kc)
			later = later.Add(time.Hour)
			os.Chtimes(filepath.Join(e.watch, "v.txt"), later, later)
			e.add("v.txt", c)
			run()
			if !bytes.Equal(e.stored("v.txt"), a) || !bytes.Equal(e.stored(kc), c) {
				t.Fatal("a lost versioned object must be sent again to its own key")
			}
			e.noStagedUploads()
		})
	}
}

// A file rewritten just after ferry's write landed and before its end was
// journaled: what landed is recorded, and the new version then goes out as
// modified after upload (reupload: over the old object), never as a
// conflict with ferry's own object. Whether the watcher settled the new
// version before the upload ended (superseded) or after (changed), the
// target ends with the final content.
func TestRewrittenAfterItsWriteLandedEndsWithTheFinalContent(t *testing.T) {
	for _, size := range pathSizes {
		for _, settledFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/superseded=%v", size, settledFirst), func(t *testing.T) {
				e := newEnv(t)
				v1, v2 := randBytes(size, 50), randBytes(size+9, 51)
				e.add("f.bin", v1)
				last := "Put"
				if size > testChunk {
					last = "CompleteMultipart"
				}
				e.sink.before = func(op string, n int, key string) error {
					if op == last && n == 1 {
						e.rewrite("f.bin", v2) // the bytes being sent are v1's
						if settledFirst {
							e.add("f.bin", v2)
						}
					}
					return nil
				}
				e.drain()
				if !settledFirst {
					r := e.row("f.bin")
					if r.State != journal.Changed || r.UploadedKey != "f.bin" || r.UploadedSHA256 != hexOf(v1) {
						t.Fatalf("after the rewrite: %+v, want changed with v1 recorded as landed", r)
					}
					e.sink.before = nil
					e.add("f.bin", v2)
					e.drain()
				}
				e.landed("f.bin", v2)
				if r := e.row("f.bin"); r.UploadedSHA256 != hexOf(v2) || r.UploadedKey != "f.bin" {
					t.Fatalf("final: %+v", r)
				}
				e.noStagedUploads()
			})
		}
	}
}

// A crash between a write landing and its end being journaled (simulated:
// the job's hashes are journaled and the object put, then the process
// "restarts"), and the file changed while ferry was down: the create-only
// write finds ferry's own earlier object, knows it as such, and the new
// content replaces it, with no conflict.
func TestOwnObjectFromBeforeACrashIsNotAConflict(t *testing.T) {
	for _, size := range pathSizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			v1, v2 := randBytes(size, 54), randBytes(size+5, 55)
			e.add("f.bin", v1)
			jobs, err := e.j.Claim(ctx, 1)
			if err != nil || len(jobs) != 1 {
				t.Fatal(jobs, err)
			}
			if err := e.j.RecordHashes(ctx, &jobs[0], hexOf(v1), nil); err != nil {
				t.Fatal(err)
			}
			if err := e.sink.Sink.Put(ctx, "f.bin", v1, sha256.Sum256(v1), true); err != nil {
				t.Fatal(err)
			}
			// kill -9 here; restart.
			if _, err := e.j.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			e.rewrite("f.bin", v2)
			e.add("f.bin", v2)
			e.drain()
			e.landed("f.bin", v2)
			e.noStagedUploads()
		})
	}
}

// A stranger's object under the key is still a conflict: only content the
// row itself sent counts as its own.
func TestStrangersObjectIsStillAConflict(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	theirs, mine := randBytes(100, 56), randBytes(100, 57)
	e.sink.Sink.Put(ctx, "f.bin", theirs, sha256.Sum256(theirs), false)
	e.add("f.bin", mine)
	e.drain()
	if r := e.row("f.bin"); r.State != journal.Failed || r.ErrorClass != ClassConflict {
		t.Fatalf("%+v, want a conflict", r)
	}
	if !bytes.Equal(e.stored("f.bin"), theirs) {
		t.Fatal("a stranger's object was overwritten")
	}
}

// A file deleted or renamed away during its upload ends vanished (not a
// dead letter, not waiting forever), with what landed, if anything.
func TestDeletedOrRenamedDuringUploadEndsVanished(t *testing.T) {
	for _, how := range []string{"deleted", "renamed"} {
		for _, size := range pathSizes {
			for _, afterWrite := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d/landed=%v", how, size, afterWrite), func(t *testing.T) {
					e := newEnv(t)
					data := randBytes(size, 58)
					e.add("run/f.bin", data)
					p := filepath.Join(e.watch, "run", "f.bin")
					op := "Put"
					switch {
					case size > testChunk && afterWrite:
						op = "CompleteMultipart"
					case size > testChunk:
						op = "UploadPart"
					}
					gone := func() {
						if how == "deleted" {
							os.Remove(p)
						} else {
							os.Rename(p, p+".renamed")
						}
					}
					if !afterWrite && size <= testChunk {
						gone() // a whole file is sent from memory: gone before it is read
					} else {
						e.sink.before = func(o string, n int, key string) error {
							if o == op && n == 1 {
								gone()
							}
							return nil
						}
					}
					e.drain()
					r := e.row("run/f.bin")
					if runtime.GOOS == "windows" && how == "deleted" && r.State == journal.Uploaded {
						// Windows keeps the name of a file deleted while
						// ferry holds it open until ferry closes it: the
						// settled version was still there to the end, and
						// landed whole.
						e.landed("run/f.bin", data)
						return
					}
					if r.State != journal.Vanished || r.Error == "" {
						t.Fatalf("%+v, want vanished with a reason", r)
					}
					if afterWrite && (r.UploadedKey != "run/f.bin" || r.UploadedSHA256 != hexOf(data)) {
						t.Fatalf("%+v: what landed before the file went is not recorded", r)
					}
					if !afterWrite && r.UploadedKey != "" {
						t.Fatalf("%+v: nothing landed", r)
					}
					e.noStagedUploads()
				})
			}
		}
	}
}

// A file that changed under its upload (changed) and is then deleted
// before it settles again ends vanished when the uploader looks (here:
// when --once's work is done), rather than waiting forever.
func TestChangedThenDeletedEndsVanished(t *testing.T) {
	e := newEnv(t)
	data := randBytes(3*testChunk, 59)
	e.add("grows", data)
	p := filepath.Join(e.watch, "grows")
	e.sink.before = func(op string, n int, key string) error {
		if op == "UploadPart" && n == 2 {
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("more"))
			f.Close()
		}
		return nil
	}
	e.drain()
	if r := e.row("grows"); r.State != journal.Changed {
		t.Fatalf("%+v, want changed", r)
	}
	os.Remove(p)
	e.sink.before = nil
	e.u = e.uploaderWith(Reupload)
	e.drain()
	if r := e.row("grows"); r.State != journal.Vanished {
		t.Fatalf("%+v, want vanished", r)
	}
	mm, _, err := e.j.VerifyState(context.Background())
	if err != nil || len(mm) > 0 {
		t.Fatalf("journal verify: %v %v", mm, err)
	}
}

// A file that comes back after it vanished, even as the very same version
// (renamed away and back), is queued and uploaded.
func TestVanishedFileThatComesBackIsUploaded(t *testing.T) {
	e := newEnv(t)
	data := randBytes(100, 60)
	e.add("f.bin", data)
	p := filepath.Join(e.watch, "f.bin")
	os.Rename(p, p+".away")
	e.drain()
	if r := e.row("f.bin"); r.State != journal.Vanished {
		t.Fatalf("%+v, want vanished", r)
	}
	os.Rename(p+".away", p)
	known, err := e.j.Known(context.Background(), e.watch, "f.bin", e.version("f.bin"))
	if err != nil || known {
		t.Fatalf("a vanished version must not count as known to the watcher: %v %v", known, err)
	}
	e.add("f.bin", data)
	e.u = e.uploaderWith(Reupload)
	e.drain()
	e.landed("f.bin", data)
}

func (e *env) version(rel string) journal.Version {
	e.t.Helper()
	st, err := srcfile.Lstat(filepath.Join(e.watch, filepath.FromSlash(rel)))
	if err != nil {
		e.t.Fatal(err)
	}
	return versionOf(st)
}

// A new version settling while a multipart upload of the old one is in
// flight: the old job's next journal step is refused (stale), it ends
// superseded, and its multipart upload must not be forgotten: the journal
// keeps its ID and the new version's attempt aborts it. (The race behind a
// flaky e2e test: an upload left open on the target, unknown to the
// journal, until the orphan sweep's TTL.)
func TestSupersededMultipartUploadIsNotOrphaned(t *testing.T) {
	e := newEnv(t)
	v1 := randBytes(3*testChunk, 61)
	v2 := append(append([]byte(nil), v1...), randBytes(5000, 62)...)
	e.add("big.bin", v1)
	e.sink.before = func(op string, n int, key string) error {
		if op == "UploadPart" && n == 2 {
			e.rewrite("big.bin", v2)
			e.add("big.bin", v2) // settled before the part's ack is journaled
		}
		return nil
	}
	e.drain()
	e.landed("big.bin", v2)
	e.noStagedUploads()
	mm, _, err := e.j.VerifyState(context.Background())
	if err != nil || len(mm) > 0 {
		t.Fatalf("journal verify: %v %v", mm, err)
	}
}

// Issue 11 item 11: with on_change = "version", a version whose multipart
// upload was kept for its next attempt (a transient failure) and then
// superseded by a newer version left that upload staged under its own
// versioned key: the newer version's attempt aborted it under its key,
// which an object store takes as an abort of an unknown upload, and the
// staged data stayed until the orphan sweep's TTL. It is aborted by its ID.
func TestSupersededVersionUploadIsAbortedAtOnce(t *testing.T) {
	e := newEnv(t)
	v1 := randBytes(3*testChunk, 71)
	v2 := randBytes(3*testChunk+7, 72)
	v3 := randBytes(3*testChunk+9, 73)
	e.add("big.bin", v1)
	e.u = e.uploaderWith(Version)
	e.drain()
	vk2, _ := VersionedKey("big.bin", hexOf(v2))
	e.sink.before = func(op string, n int, key string) error {
		if op == "UploadPart" && key == vk2 && n > 4 {
			return sink.NewTransient("UploadPart", errors.New("connection reset"))
		}
		return nil
	}
	e.add("big.bin", v2) // modified after upload: v2 goes to its versioned key, and fails
	e.u = e.uploaderWith(Version)
	e.drain()
	if r := e.row("big.bin"); r.State != journal.Queued || e.mem.Uploads() != 1 {
		t.Fatalf("v2's upload is not kept for its next attempt: row %+v, %d staged", r, e.mem.Uploads())
	}
	e.sink.before = nil
	e.rewrite("big.bin", v3)
	e.add("big.bin", v3) // a newer version, under another versioned key
	e.u = e.uploaderWith(Version)
	e.drain()
	vk3, _ := VersionedKey("big.bin", hexOf(v3))
	if !bytes.Equal(e.stored("big.bin"), v1) || !bytes.Equal(e.stored(vk3), v3) {
		t.Fatal("want v1 under the base key and v3 under its versioned key")
	}
	e.noStagedUploads()
}

// keptUpload leaves big.bin queued with its multipart upload kept for the
// next attempt (parts fail transiently), and returns the row.
func (e *env) keptUpload() journal.FileRow {
	e.t.Helper()
	e.add("big.bin", randBytes(3*testChunk, 81))
	e.sink.before = func(op string, n int, key string) error {
		if op == "UploadPart" && n > 1 {
			return sink.NewTransient("UploadPart", errors.New("connection reset"))
		}
		return nil
	}
	e.drain()
	e.sink.before = nil
	r := e.row("big.bin")
	if r.State != journal.Queued || e.mem.Uploads() != 1 {
		e.t.Fatalf("the upload is not kept for the next attempt: %+v, %d staged", r, e.mem.Uploads())
	}
	return r
}

// Issue 11 item 11: a file deleted while its multipart upload was kept for
// the next attempt (after a transient failure, or superseded) ends
// vanished, and that upload is aborted then, not left to the orphan sweep.
func TestKeptUploadOfAVanishedFileIsAborted(t *testing.T) {
	e := newEnv(t)
	var later atomic.Bool // the journal's clock: an hour on once set
	j, err := journal.Open(filepath.Join(testtmp.Dir(t), "clock.db"), journal.Options{Now: func() time.Time {
		if later.Load() {
			return time.Now().Add(time.Hour)
		}
		return time.Now()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() }) // before its folder is removed
	e.j.Close()                     // the env's journal, replaced by one on the test's clock
	e.j = j
	e.u = e.uploaderWith(Reupload)
	e.keptUpload()
	os.Remove(filepath.Join(e.watch, "big.bin"))
	later.Store(true) // the retry is due
	e.u = e.uploaderWith(Reupload)
	e.drain()
	if r := e.row("big.bin"); r.State != journal.Vanished {
		t.Fatalf("row %+v, want vanished", r)
	}
	e.noStagedUploads()
}

// Issue 11 item 11: a queued file dropped (ferry dlq drop) while its
// multipart upload was kept: the journal keeps the upload's ID until the
// uploader has aborted it, then records that (upload_aborted).
func TestKeptUploadOfADroppedFileIsAborted(t *testing.T) {
	e := newEnv(t)
	r := e.keptUpload()
	if n, err := e.j.DropDeadLetters(context.Background(), r.ID); err != nil || n != 1 {
		t.Fatalf("drop: %d, %v", n, err)
	}
	if ups, err := e.j.AbandonedUploads(context.Background()); err != nil || len(ups) != 1 {
		t.Fatalf("abandoned uploads after the drop: %+v, %v; want the kept one", ups, err)
	}
	e.u = e.uploaderWith(Reupload)
	e.drain()
	e.noStagedUploads()
	if ups, err := e.j.AbandonedUploads(context.Background()); err != nil || len(ups) != 0 {
		t.Fatalf("abandoned uploads after the uploader ran: %+v, %v", ups, err)
	}
	if r := e.row("big.bin"); r.State != journal.Dropped {
		t.Fatalf("row %+v, want dropped", r)
	}
	mm, _, err := e.j.VerifyState(context.Background())
	if err != nil || len(mm) > 0 {
		t.Fatalf("journal verify (the replay knows upload_aborted): %v %v", mm, err)
	}
}

// kinds returns the kinds of rel's events, in order.
func (e *env) kinds(rel string) []journal.Kind {
	e.t.Helper()
	var ks []journal.Kind
	err := e.j.Events(context.Background(), journal.EventFilter{}, func(ev journal.Event) error {
		if ev.RelPath == rel && ev.FileID != 0 {
			ks = append(ks, ev.Kind)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return ks
}

// Issue 14 goal 2: a file's first upload in parts reads each byte once.
// Its chunks are hashed as they are read and sent; the file's hash is
// journaled once every part was acknowledged, before the object is
// completed (and stored with it). A file whose earlier content landed is
// hashed first: that hash decides whether and where it is sent. Both keep
// the journal's chunks, chain and replay in agreement.
func TestMultipartReadsEachByteOnce(t *testing.T) {
	e := newEnv(t)
	v1 := randBytes(3*testChunk+7, 81)
	e.add("big", v1)
	e.drain()
	e.landed("big", v1)
	var order []journal.Kind
	for _, k := range e.kinds("big") {
		if len(order) == 0 || order[len(order)-1] != k {
			order = append(order, k)
		}
	}
	want := []journal.Kind{journal.KindSettled, journal.KindClaimed, journal.KindMultipartCreated, journal.KindChunkAcked,
		journal.KindChunkHashed, journal.KindFileHashed, journal.KindUploaded}
	if !slices.Equal(order, want) {
		t.Fatalf("first upload's events %v, want %v (sent as read, hashed when acknowledged)", order, want)
	}
	if r := e.row("big"); r.SHA256 != sink.Digest(sha256.Sum256(v1)).Hex() {
		t.Fatalf("journaled sha256 %s, want the file's", r.SHA256)
	}

	// Modified after its upload: hashed first (pass 1), then sent.
	v2 := randBytes(3*testChunk+9, 82)
	e.rewrite("big", v2)
	e.add("big", v2)
	e.u = e.uploaderWith(Reupload)
	e.drain()
	e.landed("big", v2)
	ks := e.kinds("big")
	second := ks[slices.Index(ks, journal.KindUploaded)+1:]
	hashed, created := slices.Index(second, journal.KindFileHashed), slices.Index(second, journal.KindMultipartCreated)
	if hashed < 0 || created < 0 || hashed > created {
		t.Fatalf("second upload's events %v, want file_hashed before multipart_created", second)
	}
	mm, _, err := e.j.VerifyState(context.Background())
	if err != nil || len(mm) > 0 {
		t.Fatalf("journal verify --state: %v %v", mm, err)
	}
}
