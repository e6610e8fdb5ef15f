package journal

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// docBlock returns the fenced block that follows the marker
// <!-- example:NAME --> in AUDIT.md.
func docBlock(t *testing.T, doc, name string) string {
	t.Helper()
	marker := "<!-- example:" + name + " -->\n"
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatalf("AUDIT.md has no %q", marker)
	}
	rest := doc[i+len(marker):]
	open := strings.Index(rest, "\n")
	if !strings.HasPrefix(rest, "```") || open < 0 {
		t.Fatalf("AUDIT.md: no fenced block after %q", marker)
	}
	body := rest[open+1:]
	end := strings.Index(body, "```\n")
	if end < 0 {
		t.Fatalf("AUDIT.md: unterminated block after %q", marker)
	}
	return body[:end]
}

// The worked examples of AUDIT.md are recomputed: the canonical encoding
// of the exported entry and its hash are what ferry computes, and the
// entry verifies.
func TestAuditDocExamples(t *testing.T) {
	b, err := os.ReadFile("../AUDIT.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)

	var e Event
	if err := json.Unmarshal([]byte(docBlock(t, doc, "event-json")), &e); err != nil {
		t.Fatal(err)
	}
	if got, want := string(canonical(e)), docBlock(t, doc, "event-canonical"); got != want {
		t.Errorf("event example: canonical encoding\n%s\nAUDIT.md says\n%s", got, want)
	}
	if got, want := EventHash(e), strings.TrimSpace(docBlock(t, doc, "event-hash")); got != want || e.Hash != want {
		t.Errorf("event example: hash %s, AUDIT.md says %s (and the JSON %s)", got, want, e.Hash)
	}
	if err := NewChainVerifier().Check(e); err != nil {
		t.Errorf("event example does not verify as the first event: %v", err)
	}

	var r AuditRecord
	if err := json.Unmarshal([]byte(docBlock(t, doc, "audit-json")), &r); err != nil {
		t.Fatal(err)
	}
	if got, want := string(auditCanonical(r)), docBlock(t, doc, "audit-canonical"); got != want {
		t.Errorf("audit example: canonical encoding\n%s\nAUDIT.md says\n%s", got, want)
	}
	if got, want := AuditHash(r), strings.TrimSpace(docBlock(t, doc, "audit-hash")); got != want || r.Hash != want {
		t.Errorf("audit example: hash %s, AUDIT.md says %s (and the JSON %s)", got, want, r.Hash)
	}
	if err := NewAuditRangeVerifier().Check(r); err != nil {
		t.Errorf("audit example does not verify: %v", err)
	}
	// The JSON shown is exactly what an export writes.
	if out, _ := json.Marshal(r); string(out) != strings.TrimSpace(docBlock(t, doc, "audit-json")) {
		t.Errorf("audit example is not an export line:\n%s", out)
	}
	if out, _ := json.Marshal(e); string(out) != strings.TrimSpace(docBlock(t, doc, "event-json")) {
		t.Errorf("event example is not an export line:\n%s", out)
	}

	var cp Checkpoint
	dec := json.NewDecoder(bytes.NewReader([]byte(docBlock(t, doc, "checkpoint"))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cp); err != nil || cp.Format != CheckpointFormat || cp.EventSeq == 0 || cp.AuditSeq == 0 {
		t.Fatalf("checkpoint example: %+v, %v", cp, err)
	}
	if out, _ := json.Marshal(cp); string(out) != strings.TrimSpace(docBlock(t, doc, "checkpoint")) {
		t.Errorf("checkpoint example is not what ferry uploads:\n%s", out)
	}
}
