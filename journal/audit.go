package journal

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kinds of audit records. The audit log is ferry's record of what happened
// to ferry itself: it is chained like the event log but separately, from
// its own genesis (AuditGenesisHash).
const (
	// AuditMigration: one schema migration applied by Open (Schema, SHA256
	// of the migration file, Subject its name). Open writes one per
	// migration it applied, in order, in the migration's own transaction.
	AuditMigration = "migration"
	// AuditStart and AuditStop: the daemon started or stopped
	// (FerryVersion; Subject the host name).
	AuditStart = "start"
	AuditStop  = "stop"
	// AuditConfigLoaded: a configuration was loaded at start. Subject is
	// the file, SHA256 its bytes' hash, Settings every setting as loaded
	// (secret values never: see the caller), Changed the names of the
	// settings that differ from the last configuration recorded
	// (every name when none was).
	AuditConfigLoaded = "config_loaded"
	// AuditConfigChanged: a running daemon applied a changed configuration
	// (fields as for AuditConfigLoaded).
	AuditConfigChanged = "config_changed"
	// AuditConfigRejected: a changed configuration was refused (invalid);
	// the one in force stays. Detail says why; Settings is empty when the
	// file could not be read as a configuration.
	AuditConfigRejected = "config_rejected"
	// AuditValidationRulesChanged: the metadata validation rules (schemas,
	// vocabularies) in force changed, at start or on a reload. Subject is
	// the configuration file, SHA256 a hash over every rule file's path and
	// SHA-256, Changed the rule files new, changed or gone, Detail a line
	// per changed file (path, SHA-256, $id, version, what changed); see
	// Journal.RecordRules.
	AuditValidationRulesChanged = "validation_rules_changed"
	// AuditCheckpoint: a checkpoint of both chains was taken (Subject the
	// host; Detail "event_seq=N event_hash=H"): see Journal.Checkpoint.
	AuditCheckpoint = "checkpoint"
)

var auditKinds = map[string]bool{
	AuditMigration: true, AuditStart: true, AuditStop: true, AuditConfigLoaded: true, AuditConfigChanged: true,
	AuditConfigRejected: true, AuditValidationRulesChanged: true, AuditCheckpoint: true,
}

// AuditGenesisHash is the prev_hash of the first audit record: the
// SHA-256 of "ferry audit log\n", so that the audit chain never starts
// like the event chain.
const AuditGenesisHash = "267ab24c9fabb618638269b40726b9ff6e99e482f30ec926246e26e5944bdc3d"

// SchemaChange is a migration's schema versions.
type SchemaChange struct {
	From, To int
}

// AuditRecord is one entry of the audit log. Callers of Journal.Audit
// fill Kind and what applies; Seq, Time, PrevHash and Hash are set by the
// journal. Nothing secret may be put in a record: it is exported as is.
type AuditRecord struct {
	Seq          int64
	Time         time.Time
	Kind         string
	FerryVersion string            // the ferry that wrote it ("" means the journal's Options.FerryVersion)
	Subject      string            // what it is about: config file, migration file, host
	SHA256       string            // of the config or migration file, lowercase hex
	Schema       *SchemaChange     // migrations only
	Changed      []string          // names of the settings (or rules) that changed, sorted
	Settings     map[string]string // the configuration as loaded, flattened (config kinds)
	Detail       string
	PrevHash     string
	Hash         string
}

// AuditHash computes an audit record's hash: SHA-256 over prev_hash, a
// newline and the canonical encoding of the other fields (AUDIT.md).
func AuditHash(r AuditRecord) string {
	h := sha256.New()
	h.Write([]byte(r.PrevHash))
	h.Write([]byte{'\n'})
	h.Write(auditCanonical(r))
	return hex.EncodeToString(h.Sum(nil))
}

// jsonText is the compact JSON of v as encoding/json writes it (map keys
// sorted), or "" for an empty list or map.
func jsonText[T any](v T, empty bool) string {
	if empty {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil { // strings and maps of strings always marshal
		panic(err)
	}
	return string(b)
}

func changedText(r AuditRecord) string  { return jsonText(r.Changed, len(r.Changed) == 0) }
func settingsText(r AuditRecord) string { return jsonText(r.Settings, len(r.Settings) == 0) }

// auditCanonical encodes a record like canonical encodes an event: fields
// in a fixed order, name=value and a newline each, text with
// strconv.Quote, numbers in decimal ("" when absent), time RFC 3339 UTC
// with nanoseconds; changed and settings are their compact JSON text
// (quoted), "" when empty.
func auditCanonical(r AuditRecord) []byte {
	var b strings.Builder
	field := func(k, v string) { b.WriteString(k); b.WriteByte('='); b.WriteString(v); b.WriteByte('\n') }
	from, to := "", ""
	if r.Schema != nil {
		from, to = strconv.Itoa(r.Schema.From), strconv.Itoa(r.Schema.To)
	}
	field("seq", strconv.FormatInt(r.Seq, 10))
	field("time", strconv.Quote(r.Time.UTC().Format(time.RFC3339Nano)))
	field("kind", strconv.Quote(r.Kind))
	field("ferry_version", strconv.Quote(r.FerryVersion))
	field("subject", strconv.Quote(r.Subject))
	field("sha256", strconv.Quote(r.SHA256))
	field("from_version", from)
	field("to_version", to)
	field("changed", strconv.Quote(changedText(r)))
	field("settings", strconv.Quote(settingsText(r)))
	field("detail", strconv.Quote(r.Detail))
	return []byte(b.String())
}

type execFunc func(q string, args ...any) (sql.Result, error)

// appendAudit chains r onto tail and inserts it.
func appendAudit(exec execFunc, tail *chainTail, r AuditRecord, now time.Time) (AuditRecord, error) {
	if !auditKinds[r.Kind] {
		return r, fmt.Errorf("audit: unknown kind %q", r.Kind)
	}
	r.Seq = tail.seq + 1
	r.Time = now
	r.PrevHash = tail.hash
	if r.PrevHash == "" {
		r.PrevHash = AuditGenesisHash
	}
	r.Hash = AuditHash(r)
	var from, to any
	if r.Schema != nil {
		from, to = r.Schema.From, r.Schema.To
	}
	_, err := exec(`INSERT INTO audit (seq, time, kind, ferry_version, subject, sha256, from_version, to_version, changed, settings, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Seq, r.Time.UTC().Format(time.RFC3339Nano), r.Kind, r.FerryVersion, r.Subject, r.SHA256, from, to,
		changedText(r), settingsText(r), r.Detail, r.PrevHash, r.Hash)
	if err != nil {
		return r, fmt.Errorf("append audit record %s: %w", r.Kind, err)
	}
	tail.seq, tail.hash = r.Seq, r.Hash
	return r, nil
}

// audit appends r to the audit chain inside the transaction.
func (t *Tx) audit(r AuditRecord) (AuditRecord, error) {
	if r.FerryVersion == "" {
		r.FerryVersion = t.j.version
	}
	return appendAudit(t.exec, t.auditTail, r, t.now)
}

// Audit appends a record to the audit log and returns once it is durable.
// r.Kind must be one of the Audit* kinds.
func (j *Journal) Audit(ctx context.Context, r AuditRecord) error {
	if !auditKinds[r.Kind] {
		return fmt.Errorf("audit: unknown kind %q", r.Kind)
	}
	return j.do(ctx, func(t *Tx) error { _, err := t.audit(r); return err })
}

const auditColumns = `seq, time, kind, ferry_version, subject, sha256, from_version, to_version, changed, settings, detail, prev_hash, hash`

func scanAudit(sc interface{ Scan(...any) error }) (AuditRecord, error) {
	var r AuditRecord
	var ts, changed, settings string
	var from, to sql.NullInt64
	if err := sc.Scan(&r.Seq, &ts, &r.Kind, &r.FerryVersion, &r.Subject, &r.SHA256, &from, &to, &changed, &settings, &r.Detail, &r.PrevHash, &r.Hash); err != nil {
		return r, err
	}
	var err error
	if r.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return r, fmt.Errorf("audit seq %d: bad time %q", r.Seq, ts)
	}
	if from.Valid || to.Valid {
		r.Schema = &SchemaChange{From: int(from.Int64), To: int(to.Int64)}
	}
	if err := parseAuditJSON(&r, changed, settings); err != nil {
		return r, err
	}
	return r, nil
}

func parseAuditJSON(r *AuditRecord, changed, settings string) error {
	if changed != "" {
		if err := json.Unmarshal([]byte(changed), &r.Changed); err != nil {
			return fmt.Errorf("audit seq %d: changed is not a JSON list of names: %v", r.Seq, err)
		}
	}
	if settings != "" {
		if err := json.Unmarshal([]byte(settings), &r.Settings); err != nil {
			return fmt.Errorf("audit seq %d: settings is not a JSON object of strings: %v", r.Seq, err)
		}
	}
	return nil
}

// AuditRecords calls fn for each audit record in the time range of f (its
// BatchID must be empty: audit records belong to no batch), in seq order,
// streaming.
func (j *Journal) AuditRecords(ctx context.Context, f EventFilter, fn func(AuditRecord) error) error {
	if f.BatchID != "" {
		return errors.New("audit records belong to no batch: a batch selects events only")
	}
	q := `SELECT ` + auditColumns + ` FROM audit`
	where, args := f.timeRange()
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := j.r.QueryContext(ctx, q+` ORDER BY seq`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return err
		}
		if !f.within(r.Time) {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// LastConfig returns the latest configuration the audit log recorded as
// in force (config_loaded or config_changed), so that the next load can
// say what changed; ok is false when there is none.
func (j *Journal) LastConfig(ctx context.Context) (r AuditRecord, ok bool, err error) {
	r, err = scanAudit(j.r.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit WHERE kind IN (?, ?) ORDER BY seq DESC LIMIT 1`,
		AuditConfigLoaded, AuditConfigChanged))
	if errors.Is(err, sql.ErrNoRows) {
		return AuditRecord{}, false, nil
	}
	return r, err == nil, err
}

// AuditVerifier checks audit records, in order, against their chain; like
// ChainVerifier, one made by NewAuditRangeVerifier starts wherever its
// first record says.
type AuditVerifier struct{ link }

// NewAuditVerifier checks a whole audit chain from seq 1.
func NewAuditVerifier() *AuditVerifier { return &AuditVerifier{link{prev: AuditGenesisHash, want: 1}} }

// NewAuditRangeVerifier checks an audit chain that may start anywhere.
func NewAuditRangeVerifier() *AuditVerifier {
	return &AuditVerifier{link{fromExport: true, genesis: AuditGenesisHash}}
}

// Check verifies the next record.
func (v *AuditVerifier) Check(r AuditRecord) error {
	return v.check(r.Seq, r.PrevHash, r.Hash, AuditHash(r), "audit seq", "audit record")
}

// VerifyAudit recomputes the audit chain from the start.
func (j *Journal) VerifyAudit(ctx context.Context) (*AuditVerifier, error) {
	v := NewAuditVerifier()
	return v, j.AuditRecords(ctx, EventFilter{}, v.Check)
}

// auditJSON is the export form of an audit record. "log": "audit" tells an
// audit export from an event export.
type auditJSON struct {
	Log          string            `json:"log"`
	Seq          int64             `json:"seq"`
	Time         string            `json:"time"`
	Kind         string            `json:"kind"`
	FerryVersion string            `json:"ferry_version"`
	Subject      string            `json:"subject"`
	SHA256       string            `json:"sha256"`
	FromVersion  *int              `json:"from_version"`
	ToVersion    *int              `json:"to_version"`
	Changed      []string          `json:"changed"`
	Settings     map[string]string `json:"settings"`
	Detail       string            `json:"detail"`
	PrevHash     string            `json:"prev_hash"`
	Hash         string            `json:"hash"`
}

// AuditLogName is the value of the "log" field of an exported audit record.
const AuditLogName = "audit"

// AuditExportColumns are the fields of an exported audit record, in order
// (the CSV header). In CSV, changed and settings are their JSON text.
var AuditExportColumns = []string{"seq", "time", "kind", "ferry_version", "subject", "sha256", "from_version", "to_version", "changed", "settings", "detail", "prev_hash", "hash"}

// MarshalJSON writes the export form.
func (r AuditRecord) MarshalJSON() ([]byte, error) {
	x := auditJSON{Log: AuditLogName, Seq: r.Seq, Time: r.Time.UTC().Format(time.RFC3339Nano), Kind: r.Kind, FerryVersion: r.FerryVersion,
		Subject: r.Subject, SHA256: r.SHA256, Changed: r.Changed, Settings: r.Settings, Detail: r.Detail, PrevHash: r.PrevHash, Hash: r.Hash}
	if r.Schema != nil {
		x.FromVersion, x.ToVersion = &r.Schema.From, &r.Schema.To
	}
	return json.Marshal(x)
}

// UnmarshalJSON reads the export form.
func (r *AuditRecord) UnmarshalJSON(b []byte) error {
	var x auditJSON
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	if x.Log != AuditLogName {
		return fmt.Errorf("seq %d: not an audit record (log %q)", x.Seq, x.Log)
	}
	t, err := time.Parse(time.RFC3339Nano, x.Time)
	if err != nil {
		return fmt.Errorf("seq %d: bad time %q", x.Seq, x.Time)
	}
	*r = AuditRecord{Seq: x.Seq, Time: t, Kind: x.Kind, FerryVersion: x.FerryVersion, Subject: x.Subject, SHA256: x.SHA256,
		Changed: x.Changed, Settings: x.Settings, Detail: x.Detail, PrevHash: x.PrevHash, Hash: x.Hash}
	if x.FromVersion != nil || x.ToVersion != nil {
		r.Schema = &SchemaChange{}
		if x.FromVersion != nil {
			r.Schema.From = *x.FromVersion
		}
		if x.ToVersion != nil {
			r.Schema.To = *x.ToVersion
		}
	}
	return exportForm(b, r.MarshalJSON, x.Seq)
}

// CSVRecord is the export form of a record as CSV fields
// (AuditExportColumns).
func (r AuditRecord) CSVRecord() []string {
	from, to := "", ""
	if r.Schema != nil {
		from, to = strconv.Itoa(r.Schema.From), strconv.Itoa(r.Schema.To)
	}
	return []string{strconv.FormatInt(r.Seq, 10), r.Time.UTC().Format(time.RFC3339Nano), r.Kind, r.FerryVersion, r.Subject, r.SHA256,
		from, to, changedText(r), settingsText(r), r.Detail, r.PrevHash, r.Hash}
}

// AuditFromCSV reads a record from its CSV fields (AuditExportColumns).
func AuditFromCSV(f []string) (AuditRecord, error) {
	var r AuditRecord
	if len(f) != len(AuditExportColumns) {
		return r, fmt.Errorf("want %d fields, got %d", len(AuditExportColumns), len(f))
	}
	var err error
	if r.Seq, err = strconv.ParseInt(f[0], 10, 64); err != nil {
		return r, fmt.Errorf("bad seq %q", f[0])
	}
	if r.Time, err = time.Parse(time.RFC3339Nano, f[1]); err != nil {
		return r, fmt.Errorf("seq %d: bad time %q", r.Seq, f[1])
	}
	r.Kind, r.FerryVersion, r.Subject, r.SHA256 = f[2], f[3], f[4], f[5]
	if f[6] != "" || f[7] != "" {
		r.Schema = &SchemaChange{}
		if r.Schema.From, err = strconv.Atoi(f[6]); err != nil {
			return r, fmt.Errorf("seq %d: bad from_version %q", r.Seq, f[6])
		}
		if r.Schema.To, err = strconv.Atoi(f[7]); err != nil {
			return r, fmt.Errorf("seq %d: bad to_version %q", r.Seq, f[7])
		}
	}
	if err := parseAuditJSON(&r, f[8], f[9]); err != nil {
		return r, err
	}
	r.Detail, r.PrevHash, r.Hash = f[10], f[11], f[12]
	return r, nil
}
