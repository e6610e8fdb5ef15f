package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/journal"
)

// The load path twice, with configurations that differ in two settings and
// in a credential's value: the second record names exactly those two
// settings, and no record holds a credential.
func TestAuditConfigRecordsWhatChanged(t *testing.T) {
	ctx := context.Background()
	p := testcfg.Write(t, testcfg.Valid)
	c1, err := config.Load(p, testcfg.Env(map[string]string{"AK": "acc3ss", "SK": "s3cr3t"}))
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(c1.Journal.Path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	d := &Daemon{j: j, version: "ferry test"}
	first, err := d.auditConfig(ctx, c1, journal.AuditConfigLoaded)
	if err != nil || len(first) != len(c1.Settings()) {
		t.Fatalf("first record: %d changed, %v; want every setting (%d)", len(first), err, len(c1.Settings()))
	}
	text := strings.Replace(strings.Replace(testcfg.Valid, `max_chunk_size = "8MiB"`, `max_chunk_size = "16MiB"`, 1), `settle = "2s"`, `settle = "3s"`, 1)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c2, err := config.Load(p, testcfg.Env(map[string]string{"AK": "acc3ss", "SK": "an0ther-s3cr3t"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.auditConfig(ctx, c2, journal.AuditConfigChanged); err != nil {
		t.Fatal(err)
	}
	var recs []journal.AuditRecord
	var all bytes.Buffer
	j.AuditRecords(ctx, journal.EventFilter{}, func(r journal.AuditRecord) error {
		b, _ := json.Marshal(r)
		all.Write(b)
		all.WriteString(strings.Join(r.CSVRecord(), ","))
		recs = append(recs, r)
		return nil
	})
	last := recs[len(recs)-1]
	in := filepath.Join(filepath.Dir(p), "in")
	if last.Kind != journal.AuditConfigChanged || last.SHA256 != config.Sum([]byte(text)) || last.Subject != p ||
		!slices.Equal(last.Changed, []string{"upload.max_chunk_size", "upload.max_inflight_bytes", "watch[" + in + "].settle"}) {
		// max_inflight_bytes follows max_chunk_size (its default is workers x chunk): it changed too.
		t.Fatalf("second record = %+v", last)
	}
	if s := all.String(); strings.Contains(s, "s3cr3t") || strings.Contains(s, "acc3ss") {
		t.Fatalf("a credential reached the audit log: %s", s)
	}
	if err := d.auditConfigRejected(ctx, p, fmt.Errorf("%s:3: bad", p)); err != nil {
		t.Fatal(err)
	}
	if r, ok, err := j.LastConfig(ctx); err != nil || !ok || r.Seq != last.Seq {
		t.Fatalf("LastConfig after a rejected one = %d, %v, %v; want the applied one (%d)", r.Seq, ok, err, last.Seq)
	}
}
