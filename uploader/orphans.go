package uploader

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ferry-data/ferry/uploader/sink"
)

// AbortOrphans aborts the multipart uploads under prefix that the journal
// does not know (known holds the IDs it does) and that began more than ttl
// before now. A crash between creating an upload and journaling its ID
// leaves such an orphan; the ttl keeps ferry's hands off uploads that
// another writer under the same prefix is still making, except for those the
// sink knows an earlier process of this host began (sink.Upload.Stale),
// which go at once. It returns how many
// were aborted; failures to abort one are logged and the rest go on.
func AbortOrphans(ctx context.Context, s sink.Sink, prefix string, known map[string]bool, ttl time.Duration, now time.Time, log *slog.Logger) (int, error) {
	ups, err := s.ListUploads(ctx, prefix)
	if err != nil {
		return 0, err
	}
	var n int
	var errs []error
	for _, up := range ups {
		if known[up.ID] || (!up.Stale && now.Sub(up.Initiated) < ttl) {
			continue
		}
		if err := s.AbortMultipart(ctx, up.Key, up.ID); err != nil {
			log.Warn("could not abort an orphaned multipart upload", "key", up.Key, "upload_id", up.ID, "error", err.Error())
			errs = append(errs, err)
			continue
		}
		log.Info("aborted an orphaned multipart upload", "key", up.Key, "upload_id", up.ID, "initiated", up.Initiated.UTC().Format(time.RFC3339))
		n++
	}
	return n, errors.Join(errs...)
}
