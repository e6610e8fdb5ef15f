package journal

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// An event's detail is text in the chain, and a chain can come from a
// file anyone handed over (verify --export, state --export, an archive):
// the readers of its key=value tokens must not panic on any of it, and
// what ferry writes with its quoting rule must read back as written.

// detailKey says whether k can be a key of a detail token.
func detailKey(k string) bool { return k != "" && !strings.ContainsAny(k, " \"=") }

func FuzzDetailValue(f *testing.F) {
	for _, c := range [][5]string{
		{"signal", "quiet", "previous_state", "uploading", ""},
		{"watch", "/data/a b", "signal", "two words", "rebuild: the target holds x"},
		{"watch", `/da"ta`, "previous_state", "failed", `free "text watch=y`},
		{"watch", "", "chunks", "3", "x=1"},
		{"key", "a=b", "etag", `"abc"`, "="},
		{"k", "\t", "k", "second", " "},
		{"k", "\n\r\v\f", "x", "\x00", "\xff"},
		{"k", "\xff\xfe a", "x", "\u2028\ufffd", `\`},
		{"k", `\"`, "x", `"`, `"unterminated`},
		{"k", "ü ß", "x", "a\u00a0b", "k=z"},
		{"k", " ", "x", "  ", "k"},
	} {
		f.Add(c[0], c[1], c[2], c[3], c[4])
	}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, rest string) {
		// Any text: no panic.
		for _, d := range []string{k1, v1, rest, k1 + "=" + v1, rest + " " + k1 + "=" + v1} {
			detailValue(d, k1)
			detailValue(d, k2)
		}
		if !detailKey(k1) || !detailKey(k2) {
			return
		}
		// Tokens written with detailWord, then free text: each key reads
		// back its first value.
		d := k1 + "=" + detailWord(v1) + " " + k2 + "=" + detailWord(v2)
		want2 := v2
		if k2 == k1 {
			want2 = v1
		}
		for _, detail := range []string{d, d + " " + rest} {
			if got, ok := detailValue(detail, k1); !ok || got != v1 {
				t.Fatalf("detailValue(%q, %q) = %q, %v; want %q (written by detailWord)", detail, k1, got, ok, v1)
			}
			if got, ok := detailValue(detail, k2); !ok || got != want2 {
				t.Fatalf("detailValue(%q, %q) = %q, %v; want %q (written by detailWord)", detail, k2, got, ok, want2)
			}
		}
		// watchDetail, which quotes always, then a detailWord token.
		d = watchDetail(v1) + " " + k2 + "=" + detailWord(v2)
		if got, ok := detailValue(d, "watch"); !ok || got != v1 {
			t.Fatalf("detailValue(%q, watch) = %q, %v; want %q", d, got, ok, v1)
		}
		if got, ok := detailValue(d, k2); k2 != "watch" && (!ok || got != v2) {
			t.Fatalf("detailValue(%q, %q) = %q, %v; want %q", d, k2, got, ok, v2)
		}
	})
}

// fuzzHash is a hash made from fuzz bytes: the chains only hold those.
func fuzzHash(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func FuzzParseArchivePoint(f *testing.F) {
	f.Add(int64(1), int64(40), []byte("h"), int64(1795681800000000000), int64(1795682000123456789), int64(40), 3, "archive-2026-11-26.jsonl", "first_seq=1 last_seq=40")
	f.Add(int64(0), int64(-1), []byte{}, int64(-1<<63), int64(1<<63-1), int64(-5), -1, "", "")
	f.Add(int64(1<<63-1), int64(-1<<63), []byte{0}, int64(0), int64(1), int64(0), 1<<31, "a \"b\"\n\xff", `first_seq=1 last_seq=2 last_hash= last_time=2026-11-26T09:00:00Z before=2026-11-26T09:00:00Z count=2 files=0 archive=""`)
	f.Add(int64(2), int64(3), []byte("x"), int64(0), int64(0), int64(2), 0, "x", `first_seq=1 last_seq=2 last_hash="a b" last_time=2026-11-26T09:00:00Z before=2026-11-26T09:00:00Z count=2 files=0 archive="x"`)
	f.Add(int64(2), int64(3), []byte("x"), int64(0), int64(0), int64(2), 0, "x", `first_seq=99999999999999999999 last_seq=2 last_hash=x last_time=2026-11-26T09:00:00+01:00 before=0000-01-01T00:00:00Z count=-0 files=+1 archive="\x"`)
	f.Fuzz(func(t *testing.T, first, last int64, hashOf []byte, lastTime, before, count int64, files int, name, detail string) {
		// A point ferry writes reads back as it was; one it cannot write
		// (seqs out of order, negative counts) is refused.
		a := ArchivePoint{FirstSeq: first, LastSeq: last, LastHash: fuzzHash(hashOf), LastTime: time.Unix(0, lastTime).UTC(),
			Before: time.Unix(0, before).UTC(), Count: count, Files: files, SHA256: fuzzHash(append(hashOf, 1)), Name: name, Seq: last + 1}
		got, err := ParseArchivePoint(Event{Seq: a.Seq, Kind: KindArchived, SHA256: a.SHA256, Detail: a.Detail()})
		possible := first >= 1 && last >= first && count >= 0 && files >= 0 && int(int64(files)) == files
		if possible && (err != nil || !sameArchivePoint(got, a)) {
			t.Fatalf("ParseArchivePoint(%q) = %+v, %v; want %+v", a.Detail(), got, err, a)
		}
		if !possible && err == nil {
			t.Fatalf("ParseArchivePoint(%q) accepted an impossible point %+v", a.Detail(), got)
		}
		// Any detail: no panic; what it accepts, it writes so that it
		// reads back the same.
		p, err := ParseArchivePoint(Event{Seq: 7, Kind: KindArchived, Detail: detail})
		if err != nil {
			return
		}
		if q, err := ParseArchivePoint(Event{Seq: 7, Kind: KindArchived, Detail: p.Detail()}); err != nil || !sameArchivePoint(q, p) {
			t.Fatalf("ParseArchivePoint(%q) = %+v, written as %q, reads back as %+v, %v", detail, p, p.Detail(), q, err)
		}
	})
}

func sameArchivePoint(a, b ArchivePoint) bool {
	return a.FirstSeq == b.FirstSeq && a.LastSeq == b.LastSeq && a.LastHash == b.LastHash && a.LastTime.Equal(b.LastTime) &&
		a.Before.Equal(b.Before) && a.Count == b.Count && a.Files == b.Files && a.SHA256 == b.SHA256 && a.Name == b.Name && a.Seq == b.Seq
}

func FuzzParseFileState(f *testing.F) {
	f.Add(int64(1), "/data/scope1", 0, int64(1), []byte("a"), true, 3, []byte("d"), int64(9), int64(1795681800000000000), "watch=\"/w\" state=uploaded")
	f.Add(int64(-1), "", 6, int64(-1<<63), []byte{}, false, -1, []byte{}, int64(0), int64(-1<<63), "")
	f.Add(int64(1<<63-1), "a \"b\"\n\xff=", 3, int64(1<<63-1), []byte{0}, true, 1<<31, []byte{1}, int64(-5), int64(1<<63-1),
		`watch="w" state="up loaded" generation=1 uploaded_sha256= chunks=0 chunks_digest= last_seq=1 last_time=2026-11-26T09:00:00Z`)
	states := States()
	f.Fuzz(func(t *testing.T, id int64, watch string, state int, gen int64, upOf []byte, uploaded bool, chunks int, digestOf []byte, lastSeq, lastTime int64, detail string) {
		// A file state ferry writes reads back as it was.
		fs := &FileState{FileID: id, Watch: watch, RelPath: "run/a b", BatchID: "run", State: states[uint(state)%uint(len(states))],
			Size: 5, SHA256: fuzzHash(upOf), Generation: gen, Chunks: chunks, ChunksDigest: fuzzHash(digestOf),
			LastSeq: lastSeq, LastTime: time.Unix(0, lastTime).UTC()}
		if uploaded {
			fs.UploadedSHA256 = fuzzHash(append(upOf, 1))
		}
		e := FileStateEvent(fs)
		e.Seq = 3
		got, err := parseFileState(e)
		if id == 0 || gen < 0 || chunks < 0 || lastSeq < 0 {
			if err == nil {
				t.Fatalf("parseFileState(%+v) without a file_id or with a negative count: no error", e)
			}
		} else if err != nil || !sameFileState(got, fs) {
			t.Fatalf("parseFileState(%q) = %+v, %v; want %+v", e.Detail, got, err, fs)
		}
		// Any detail: no panic; what it accepts, it writes so that it
		// reads back the same.
		p, err := parseFileState(Event{Seq: 3, Kind: KindFileState, FileID: 1, Detail: detail})
		if err != nil {
			return
		}
		e = FileStateEvent(p)
		if q, err := parseFileState(e); err != nil || !sameFileState(q, p) {
			t.Fatalf("parseFileState(%q) = %+v, written as %q, reads back as %+v, %v", detail, p, e.Detail, q, err)
		}
	})
}

func sameFileState(a, b *FileState) bool {
	return a.FileID == b.FileID && a.Watch == b.Watch && a.RelPath == b.RelPath && a.BatchID == b.BatchID && a.State == b.State &&
		a.Size == b.Size && a.SHA256 == b.SHA256 && a.Generation == b.Generation && a.UploadedSHA256 == b.UploadedSHA256 &&
		a.Chunks == b.Chunks && a.ChunksDigest == b.ChunksDigest && a.LastSeq == b.LastSeq && a.LastTime.Equal(b.LastTime)
}
