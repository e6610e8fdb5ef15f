package uploader

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
)

// Issue 11 item 11: a multipart upload an earlier process of this host
// staged in an fs target and never journaled (a kill between creating it
// and journaling its ID) is removed at the next start, without waiting out
// orphan_upload_ttl; one staged by another writer (here: this process, after
// the start) is left to the TTL.
func TestAbortOrphansOfAnEarlierProcessAtOnce(t *testing.T) {
	ctx := context.Background()
	root := testtmp.Dir(t)
	before, err := fssink.New(root)
	if err != nil {
		t.Fatal(err)
	}
	old, err := before.CreateMultipart(ctx, "p/old.bin", 10)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	os.Chtimes(filepath.Join(root, fssink.UploadsDir, old), past, past)
	now, err := fssink.New(root) // the next start
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := now.CreateMultipart(ctx, "p/new.bin", 10)
	if err != nil {
		t.Fatal(err)
	}
	n, err := AbortOrphans(ctx, now, "p/", map[string]bool{}, 24*time.Hour, time.Now(), slog.New(slog.DiscardHandler))
	if err != nil || n != 1 {
		t.Fatalf("AbortOrphans = %d, %v; want the earlier process's upload aborted", n, err)
	}
	ups, err := now.ListUploads(ctx, "p/")
	if err != nil || len(ups) != 1 || ups[0].ID != fresh {
		t.Fatalf("left: %+v, %v; want only %s", ups, err, fresh)
	}
	if _, err := os.Stat(filepath.Join(root, fssink.UploadsDir, old)); !os.IsNotExist(err) {
		t.Fatalf("the orphan's staged data is still there: %v", err)
	}
}
