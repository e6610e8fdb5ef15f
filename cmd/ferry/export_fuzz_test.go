package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/journal"
)

// `ferry journal verify --export FILE` reads a file an auditor hands it:
// untrusted bytes. FuzzVerifyExport checks the verb against an auditor's
// reading of AUDIT.md written here without ferry's journal code: on any
// bytes it does not panic; it says intact (exit 0) only for a valid export
// (every line exactly as ferry's exporter writes it, every field the
// document lists and no other, the hash recomputed from the canonical
// encoding as AUDIT.md describes it, the seqs and prev_hashes linked); and
// for anything else it exits 1 naming the first bad line, 1-based.
//
// verify reads JSONL only: there is no CSV form to fuzz.

// exportField is a field of an export line as AUDIT.md describes it.
type exportField struct {
	name string
	kind string // int, time, text, num? (a number or null), hash, log, list, map
}

var (
	auditorEventFields = []exportField{{"seq", "int"}, {"time", "time"}, {"kind", "text"}, {"file_id", "num?"},
		{"correlation_id", "text"}, {"batch_id", "text"}, {"chunk_sequence", "num?"}, {"rel_path", "text"},
		{"size", "num?"}, {"sha256", "text"}, {"detail", "text"}, {"prev_hash", "hash"}, {"hash", "hash"}}
	auditorAuditFields = []exportField{{"log", "log"}, {"seq", "int"}, {"time", "time"}, {"kind", "text"},
		{"ferry_version", "text"}, {"subject", "text"}, {"sha256", "text"}, {"from_version", "num?"},
		{"to_version", "num?"}, {"changed", "list"}, {"settings", "map"}, {"detail", "text"},
		{"prev_hash", "hash"}, {"hash", "hash"}}
)

// The genesis prev_hash of each log (AUDIT.md, "The hash").
const (
	auditorEventGenesis = "0000000000000000000000000000000000000000000000000000000000000000"
	auditorAuditGenesis = "267ab24c9fabb618638269b40726b9ff6e99e482f30ec926246e26e5944bdc3d"
)

func isLowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// auditorEntry reads one export line: its seq, prev_hash and hash, or why
// it is not a line of a valid export. It checks the line's own hash.
func auditorEntry(line []byte, fields []exportField) (seq int64, prev, hash string, err error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return 0, "", "", err
	}
	if m == nil || len(m) != len(fields) {
		return 0, "", "", fmt.Errorf("%d fields, want %d", len(m), len(fields))
	}
	var canon strings.Builder
	var render bytes.Buffer
	render.WriteByte('{')
	for i, f := range fields {
		raw, ok := m[f.name]
		if !ok {
			return 0, "", "", fmt.Errorf("no %s", f.name)
		}
		var v any // the value as decoded: rendered again below
		var text string
		switch f.kind {
		case "int":
			var n int64
			if err := json.Unmarshal(raw, &n); err != nil {
				return 0, "", "", err
			}
			v, text, seq = n, strconv.FormatInt(n, 10), n
		case "num?":
			var n *int64
			if err := json.Unmarshal(raw, &n); err != nil {
				return 0, "", "", err
			}
			if v = n; n != nil {
				text = strconv.FormatInt(*n, 10)
			}
		case "list":
			var l []string
			if err := json.Unmarshal(raw, &l); err != nil {
				return 0, "", "", err
			}
			v, text = l, `""`
			if len(l) > 0 {
				b, _ := json.Marshal(l)
				text = strconv.Quote(string(b))
			}
		case "map":
			var mm map[string]string
			if err := json.Unmarshal(raw, &mm); err != nil {
				return 0, "", "", err
			}
			v, text = mm, `""`
			if len(mm) > 0 {
				b, _ := json.Marshal(mm)
				text = strconv.Quote(string(b))
			}
		default: // text, time, hash, log
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return 0, "", "", err
			}
			v, text = s, strconv.Quote(s)
			switch f.kind {
			case "time":
				if t, err := time.Parse(time.RFC3339Nano, s); err != nil || t.UTC().Format(time.RFC3339Nano) != s {
					return 0, "", "", fmt.Errorf("time %q is not RFC 3339 UTC", s)
				}
			case "hash":
				if !isLowerHex64(s) {
					return 0, "", "", fmt.Errorf("%s %q is not a hash", f.name, s)
				}
				if f.name == "hash" {
					hash = s
				} else {
					prev = s
				}
			case "log":
				if s != "audit" {
					return 0, "", "", fmt.Errorf("log %q", s)
				}
			}
		}
		if f.kind != "hash" && f.kind != "log" {
			fmt.Fprintf(&canon, "%s=%s\n", f.name, text)
		}
		if i > 0 {
			render.WriteByte(',')
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(&render, "%q:%s", f.name, b)
	}
	render.WriteByte('}')
	if !bytes.Equal(render.Bytes(), bytes.Trim(line, " \t\r")) {
		return 0, "", "", fmt.Errorf("not as ferry writes it:\n%s\n%s", line, render.Bytes())
	}
	sum := sha256.Sum256([]byte(prev + "\n" + canon.String()))
	if hex.EncodeToString(sum[:]) != hash {
		return 0, "", "", fmt.Errorf("hash does not match")
	}
	return seq, prev, hash, nil
}

// auditorVerify returns 0 for a valid export, else the 1-based number of
// its first bad line, and how many entries precede it.
func auditorVerify(data []byte) (badLine int, good int, why error) {
	lines := bytes.Split(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	var fields []exportField
	var wantSeq int64
	var wantPrev string
	for i, l := range lines {
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		genesis := auditorEventGenesis
		if fields == nil {
			var x map[string]json.RawMessage
			fields = auditorEventFields
			if json.Unmarshal(l, &x) == nil && string(x["log"]) == `"audit"` {
				fields = auditorAuditFields
			}
		}
		if fields[0].name == "log" {
			genesis = auditorAuditGenesis
		}
		seq, prev, hash, err := auditorEntry(l, fields)
		switch {
		case err != nil:
		case good == 0 && seq < 1:
			err = fmt.Errorf("seq %d", seq)
		case good == 0 && seq == 1 && prev != genesis:
			err = fmt.Errorf("seq 1 without the genesis prev_hash")
		case good > 0 && (seq != wantSeq || prev != wantPrev):
			err = fmt.Errorf("seq %d does not follow", seq)
		}
		if err != nil {
			return i + 1, good, err
		}
		wantSeq, wantPrev = seq+1, hash
		good++
	}
	return 0, good, nil
}

var notIntactRE = regexp.MustCompile(`NOT intact after (\d+) good \w+: line (\d+): `)

func FuzzVerifyExport(f *testing.F) {
	for _, s := range exportSeeds(f) {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "export.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr strings.Builder
		code := run(t.Context(), []string{"journal", "verify", "--export", path}, &stdout, &stderr,
			func(string) (string, bool) { return "", false })
		badLine, good, why := auditorVerify(data)
		if badLine == 0 {
			if code != exitOK || !strings.Contains(stdout.String(), "intact") {
				t.Fatalf("a valid export of %d entries: exit %d, %q %q\n%q", good, code, stdout.String(), stderr.String(), data)
			}
			return
		}
		if code != exitFailed {
			t.Fatalf("line %d is bad (%v), yet exit %d, %q %q\n%q", badLine, why, code, stdout.String(), stderr.String(), data)
		}
		m := notIntactRE.FindStringSubmatch(stderr.String())
		if m == nil || m[2] != strconv.Itoa(badLine) || m[1] != strconv.Itoa(good) {
			t.Fatalf("line %d is bad (%v), after %d good entries; verify says %q\n%q", badLine, why, good, stderr.String(), data)
		}
	})
}

// A line longer than the reader takes (16 MiB) is named too; the fuzzer's
// inputs are never that long.
func TestVerifyExportNamesAnOverlongLine(t *testing.T) {
	valid := exportSeeds(t)[0]
	path := filepath.Join(t.TempDir(), "export.jsonl")
	long := `{"seq":2,"detail":"` + strings.Repeat("x", 17<<20) + `"}`
	if err := os.WriteFile(path, []byte(valid[:strings.IndexByte(valid, '\n')+1]+long+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := run(t.Context(), []string{"journal", "verify", "--export", path}, &stdout, &stderr,
		func(string) (string, bool) { return "", false })
	if m := notIntactRE.FindStringSubmatch(stderr.String()); code != exitFailed || m == nil || m[1] != "1" || m[2] != "2" {
		t.Fatalf("an overlong line 2: exit %d, %q; want 1 naming line 2 after 1 good event", code, stderr.String())
	}
}

// exportSeeds are valid exports of both logs and damaged copies of them:
// each damage below keeps the hash that ferry's reader computes, so that
// only the reader's strictness can tell it apart.
func exportSeeds(f testing.TB) []string {
	f.Helper()
	t0 := time.Date(2026, 11, 26, 9, 30, 0, 500_000_000, time.UTC)
	evs := []journal.Event{
		{Kind: "settled", FileID: 1, CorrelationID: "c0ffee", BatchID: "run 0001", RelPath: "run 0001/tile \"A\".tif", Size: 1 << 20, Detail: "signal=quiet"},
		{Kind: "chunk_uploaded", FileID: 1, ChunkSequence: 1, Size: 0, SHA256: strings.Repeat("ab", 32), Detail: "key=<a&b>\u2028 \ufffd"},
		{Kind: "checkpoint", Size: -1},
		{Kind: "uploaded", FileID: 2, RelPath: "ü/ß.txt", Size: 7},
	}
	prev := journal.GenesisHash
	var ev []string
	for i := range evs {
		e := &evs[i]
		e.Seq, e.Time, e.PrevHash = int64(i+1), t0.Add(time.Duration(i)*time.Second), prev
		e.Hash = journal.EventHash(*e)
		prev = e.Hash
		b, err := json.Marshal(*e)
		if err != nil {
			f.Fatal(err)
		}
		ev = append(ev, string(b))
	}
	recs := []journal.AuditRecord{
		{Kind: journal.AuditMigration, FerryVersion: "ferry 1.0.0", Subject: "0001_init.sql", SHA256: strings.Repeat("cd", 32), Schema: &journal.SchemaChange{From: 0, To: 1}},
		{Kind: journal.AuditConfigLoaded, FerryVersion: "ferry 1.0.0", Subject: "/etc/ferry/ferry.toml",
			Changed: []string{"upload.max_chunk_size", "watch[/data].settle"}, Settings: map[string]string{"upload.max_chunk_size": "32MiB", "watch[/data].settle": "10s"}},
		{Kind: journal.AuditStart, FerryVersion: "ferry 1.0.0", Subject: "scope1-pc"},
	}
	prev = journal.AuditGenesisHash
	var au []string
	for i := range recs {
		r := &recs[i]
		r.Seq, r.Time, r.PrevHash = int64(i+1), t0.Add(time.Duration(i)*time.Second), prev
		r.Hash = journal.AuditHash(*r)
		prev = r.Hash
		b, err := json.Marshal(*r)
		if err != nil {
			f.Fatal(err)
		}
		au = append(au, string(b))
	}
	// rehashed is evs[i] changed by change, its hash computed again, as
	// a line changed by edit.
	rehashed := func(i int, change func(*journal.Event), edit func(string) string) string {
		e := evs[i]
		change(&e)
		e.Hash = journal.EventHash(e)
		b, err := json.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		return edit(string(b))
	}
	replace := func(line, old, new string) string {
		if !strings.Contains(line, old) {
			f.Fatalf("seed: %q not in %s", old, line)
		}
		return strings.Replace(line, old, new, 1)
	}
	// moveLast moves the field kv (not the last) to the end of line.
	moveLast := func(line, kv string) string {
		l := replace(line, kv+",", "")
		return l[:len(l)-1] + "," + kv + "}"
	}
	lines := func(l ...string) string { return strings.Join(l, "\n") + "\n" }
	// A first event at seq 5, with a prev_hash that is not a hash.
	odd := journal.Event{Seq: 5, Time: t0, Kind: "settled", Size: -1, PrevHash: ""}
	odd.Hash = journal.EventHash(odd)
	oddLine, _ := json.Marshal(odd)
	// A first event at seq 1 that does not start from the genesis.
	forged := journal.Event{Seq: 1, Time: t0, Kind: "settled", Size: -1, PrevHash: strings.Repeat("1", 64)}
	forged.Hash = journal.EventHash(forged)
	forgedLine, _ := json.Marshal(forged)
	zero := journal.Event{Seq: 0, Time: t0, Kind: "settled", Size: -1, PrevHash: journal.GenesisHash}
	zero.Hash = journal.EventHash(zero)
	zeroLine, _ := json.Marshal(zero)
	// An audit record with only one of its schema versions.
	half := journal.AuditRecord{Seq: 1, Time: t0, Kind: journal.AuditMigration, Schema: &journal.SchemaChange{From: 0, To: 5}, PrevHash: journal.AuditGenesisHash}
	half.Hash = journal.AuditHash(half)
	halfLine, _ := json.Marshal(half)

	return []string{
		// Valid.
		lines(ev...),
		lines(au...),
		lines(ev[1:]...), // a range
		strings.Join(ev, "\n"),
		strings.Join(ev, "\r\n") + "\r\n",
		"\n\n" + lines(ev[0], "", "  ", ev[1]),
		"", "\n", " \t\r\n",
		// Not JSON, or not an entry.
		"x", "\xef\xbb\xbf" + lines(ev...), "null\n", "{}\n", "[]\n", `"seq"` + "\n", "0\n",
		lines(ev[0], ev[1][:len(ev[1])/2]), lines(ev[0], "\x00"), lines(ev[0], ev[1]+"x"),
		lines(ev[0], ev[1]+ev[2]), lines(ev[0], "{"+ev[1]),
		// Chains broken.
		lines(ev[0], ev[2]), lines(ev[1], ev[0]), lines(ev[0], ev[0]),
		lines(ev[0], replace(ev[1], `"kind":"chunk_uploaded"`, `"kind":"chunk_uploadeD"`)),
		// The other log on a later line.
		lines(ev[0], au[0]), lines(au[0], ev[0]), lines(au[0], au[2]),
		// Damage ferry's reader might read past: each keeps its hash.
		lines(ev[0], replace(ev[1], `"kind":"chunk_uploaded"`, `"kind":"uploaded","KIND":"chunk_uploaded"`)),
		lines(ev[0], replace(ev[1], `"kind":"chunk_uploaded"`, `"kind":"uploaded","kind":"chunk_uploaded"`)),
		lines(ev[0], replace(ev[1], `"seq":2`, `"SEQ":2`)),
		lines(ev[0], replace(ev[1], `"size":0`, `"size":0,"approved_by":"the auditor"`)),
		lines(ev[0], replace(ev[1], `"correlation_id":"",`, ``)),
		lines(ev[0], replace(ev[1], `"rel_path":"",`, `"rel_path":null,`)),
		lines(ev[0], ev[1], replace(ev[2], `"file_id":null`, `"file_id":0`)),
		lines(ev[0], ev[1], replace(ev[2], `"size":null`, `"size":-5`)),
		lines(ev[0], ev[1], replace(ev[2], `"chunk_sequence":null`, `"chunk_sequence":0`)),
		lines(ev[0], replace(ev[1], `"time":"2026-11-26T09:30:01.5Z"`, `"time":"2026-11-26T10:30:01.5+01:00"`)),
		lines(ev[0], replace(ev[1], `"time":"2026-11-26T09:30:01.5Z"`, `"time":"2026-11-26T09:30:01.500Z"`)),
		lines(ev[0], replace(ev[1], "\ufffd", "\xff")),
		lines(ev[0], replace(ev[1], "\ufffd", `\ud800`)),
		lines(ev[0], replace(ev[1], `"kind":"chunk_uploaded"`, `"kind":"\u0063hunk_uploaded"`)),
		lines(ev[0], replace(ev[1], `\u003c`, `<`)),
		lines(ev[0], replace(ev[1], `"seq":2,`, `"seq":2 ,`)),
		lines(ev[0], moveLast(ev[1], `"file_id":1`)),
		lines(moveLast(au[0], `"log":"audit"`)),
		lines(au[0], replace(au[1], `"settings":{`, `"settings":{"upload.max_chunk_size":"1B",`)),
		lines(replace(string(halfLine), `"from_version":0`, `"from_version":null`)),
		lines(string(oddLine)), lines(string(forgedLine)), lines(string(zeroLine)),
		lines(ev[0], rehashed(1, func(e *journal.Event) { e.Size = -1 }, func(l string) string { return replace(l, `"size":null`, `"size":-1`) })),
		lines(ev[0], rehashed(1, func(e *journal.Event) { e.ChunkSequence = -3 }, func(l string) string { return l })),
		// Numbers ferry cannot hold, and other types.
		lines(replace(ev[0], `"seq":1`, `"seq":9223372036854775808`)),
		lines(replace(ev[0], `"seq":1`, `"seq":1.0`)),
		lines(replace(ev[0], `"seq":1`, `"seq":-0`)),
		lines(replace(ev[0], `"seq":1`, `"seq":"1"`)),
		lines(replace(ev[0], `"size":1048576`, `"size":1e6`)),
		lines(replace(ev[0], `"kind":"settled"`, `"kind":1`)),
		lines(replace(au[1], `"changed":[`, `"changed":[1,`)),
		lines(replace(au[1], `"changed":["upload.max_chunk_size","watch[/data].settle"]`, `"changed":[]`)),
		lines(replace(au[2], `"settings":null`, `"settings":{}`)),
	}
}
