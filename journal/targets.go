package journal

import (
	"context"
	"database/sql"
	"errors"
)

// PendingTargets counts, by target name, the files waiting to be uploaded
// (queued or uploading). The uploader uses it to leave alone the files of a
// target taken out of the configuration.
func (j *Journal) PendingTargets(ctx context.Context) (map[string]int, error) {
	return j.countBy(ctx, `SELECT target, COUNT(*) FROM files WHERE `+inStates(Queued, Uploading)+` GROUP BY target`)
}

// SentObjects calls fn for every key and content SHA-256 ferry sent (or
// may have sent) to target, each pair once.
func (j *Journal) SentObjects(ctx context.Context, target string, fn func(key, sha256 string) error) error {
	rs, err := j.r.QueryContext(ctx, `SELECT DISTINCT object_key, sha256 FROM objects WHERE target = ?`, target)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		var key, sum string
		if err := rs.Scan(&key, &sum); err != nil {
			return err
		}
		if err := fn(key, sum); err != nil {
			return err
		}
	}
	return rs.Err()
}

// SourceKeysLike returns the keys on target of the files the journal holds
// (sent or not) that match one of the SQL LIKE patterns (case-insensitive
// for ASCII, as LIKE is).
func (j *Journal) SourceKeysLike(ctx context.Context, target string, patterns ...string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, p := range patterns {
		rs, err := j.r.QueryContext(ctx, `SELECT object_key FROM files WHERE target = ?1 AND object_key LIKE ?2
			UNION SELECT uploaded_key FROM files WHERE target = ?1 AND uploaded_key LIKE ?2
			UNION SELECT object_key FROM objects WHERE target = ?1 AND object_key LIKE ?2`, target, p)
		keys, err := collect(rs, err, func(sc scanner) (string, error) {
			var k string
			return k, sc.Scan(&k)
		})
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			out[k] = true
		}
	}
	return out, nil
}

// AbandonedUpload is a multipart upload a row still holds although nothing
// will resume it: the row vanished or was dropped while the upload was kept
// for its next attempt. The uploader aborts it on the target, then records
// that (UploadAborted): journaled first, performed after.
type AbandonedUpload struct {
	ID       int64
	Target   string
	Key      string
	UploadID string
}

// AbandonedUploads returns the multipart uploads of vanished and dropped
// rows.
func (j *Journal) AbandonedUploads(ctx context.Context) ([]AbandonedUpload, error) {
	rs, err := j.r.QueryContext(ctx, `SELECT id, target, object_key, upload_id FROM files WHERE upload_id IS NOT NULL AND `+inStates(Vanished, Dropped)+` ORDER BY id`)
	return collect(rs, err, func(sc scanner) (AbandonedUpload, error) {
		var a AbandonedUpload
		return a, sc.Scan(&a.ID, &a.Target, &a.Key, &a.UploadID)
	})
}

// UploadAborted records that an abandoned upload was aborted on the target;
// a row that moved on meanwhile (settled again, another upload) is left
// alone.
func (j *Journal) UploadAborted(ctx context.Context, a AbandonedUpload) error {
	return j.do(ctx, func(t *Tx) error {
		r, err := t.row(a.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		if r.UploadID != a.UploadID {
			return nil
		}
		if _, err := ruleFor(KindUploadAborted, r.State); err != nil {
			return nil
		}
		return t.move(&r, &change{Kind: KindUploadAborted, Detail: "upload_id=" + a.UploadID})
	})
}
