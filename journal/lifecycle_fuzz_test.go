package journal

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// FuzzLifecycle drives a journal through random sequences of what the
// watcher, the uploader, a person and a restart do to a few files, and
// checks, after every sequence, that the files table is what the replay of
// the event chain says (journal verify), that the chain verifies, and that
// no operation was refused for another reason than the lifecycle table
// (ErrTransition), a superseded job (ErrStale) or a person's command on the
// wrong row.
func FuzzLifecycle(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 0, 1, 0, 2, 0, 7, 0},                   // settle, claim, hash, upload
		{0, 0, 1, 0, 2, 0, 0, 1, 7, 0},             // a new version during the upload: superseded
		{0, 0, 1, 0, 2, 0, 9, 0, 0, 1, 1, 0},       // landed, then the source changed, settled again
		{0, 0, 1, 0, 10, 0, 12, 0, 1, 0, 11, 0},    // vanished, dropped, ...
		{0, 0, 1, 0, 8, 0, 13, 0, 14, 0, 1, 0},     // failed, dlq retry, restart
		{0, 0, 0, 1, 0, 2, 1, 0, 1, 1, 2, 1, 7, 2}, // three files
		{0, 0, 1, 0, 3, 0, 4, 0, 6, 0, 14, 0, 1, 0, 2, 0, 5, 0, 7, 0},
		{15, 0, 1, 0, 2, 0, 0, 0, 1, 0, 7, 0},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 120 {
			ops = ops[:120]
		}
		j, err := Open(filepath.Join(testtmp.Dir(t), "fuzz.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		ctx := context.Background()
		jobs := map[int64]*Job{} // the latest job of each file id
		byFile := func(n byte) *Job {
			rel := fmt.Sprintf("run/f%d", n%3)
			for _, jb := range jobs {
				if jb.RelPath == rel {
					return jb
				}
			}
			return nil
		}
		landed := func(jb *Job, n byte) *Landed {
			if n&4 == 0 {
				return nil
			}
			return &Landed{Key: jb.Key, SHA256: fmt.Sprintf("sha-%d", n)}
		}
		size := int64(1)
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%16, ops[i+1]
			jb := byFile(arg)
			var err error
			switch op {
			case 0: // the watcher: a version settles
				size++
				s := settled(fmt.Sprintf("run/f%d", arg%3), size)
				if arg&8 != 0 {
					s.Invalid = "bad name"
				}
				_, err = j.RecordSettled(ctx, s)
			case 1: // the dispatcher claims
				var got []Job
				got, err = j.Claim(ctx, 1+int(arg%3))
				for i := range got {
					jobs[got[i].ID] = &got[i]
				}
			case 2:
				if jb != nil {
					err = j.RecordHashes(ctx, jb, fmt.Sprintf("sha-%d", arg), []Chunk{{Seq: 1, Size: jb.Version.Size, SHA256: "c"}})
				}
			case 3:
				if jb != nil {
					err = j.SetUploadID(ctx, jb, fmt.Sprintf("up-%d", arg))
				}
			case 4:
				if jb != nil {
					err = j.AckChunk(ctx, jb, 1, "etag")
				}
			case 5:
				if jb != nil {
					err = j.ModifiedAfterUpload(ctx, jb, "old", fmt.Sprintf("sha-%d", arg), "version", jb.Key+"~v")
				}
			case 6:
				if jb != nil {
					err = j.Finish(ctx, jb, End{Kind: KindRetryScheduled, Reason: "503", Due: time.Now(), Landed: landed(jb, arg)})
				}
			case 7:
				if jb != nil {
					err = j.Complete(ctx, jb, fmt.Sprintf("sha-%d", arg), jb.Key)
				}
			case 8:
				if jb != nil {
					err = j.Finish(ctx, jb, End{Kind: KindFailed, Class: "permanent", Reason: "403", Landed: landed(jb, arg)})
				}
			case 9:
				if jb != nil {
					err = j.Finish(ctx, jb, End{Kind: KindSourceChanged, Reason: "grew", Landed: landed(jb, arg)})
				}
			case 10:
				if jb != nil {
					err = j.Finish(ctx, jb, End{Kind: KindVanished, Reason: "gone", Landed: landed(jb, arg)})
				}
			case 11:
				if jb != nil {
					_, err = j.Vanish(ctx, "gone while it waited", jb.ID)
				}
			case 12:
				if jb != nil {
					_, err = j.DropDeadLetters(ctx, jb.ID)
				}
			case 13:
				_, err = j.RetryDeadLetters(ctx)
			case 14: // a restart
				_, err = j.Recover(ctx)
			case 15:
				if jb != nil {
					err = j.Finish(ctx, jb, End{Kind: KindReleased, Landed: landed(jb, arg)})
				}
			}
			if err != nil && !errors.Is(err, ErrStale) && !errors.Is(err, ErrTransition) && !errors.Is(err, ErrNotDeadLetter) {
				t.Fatalf("op %d (%d, %d): %v", i/2, op, arg, err)
			}
		}
		mm, _, err := j.VerifyState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mm {
			t.Errorf("replay and table disagree: %s", m)
		}
		if _, err := j.VerifyChain(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
