package datasets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ferry-data/ferry/dataset"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink/memsink"
)

// BenchmarkClose10000 is the cost of closing a dataset of 10,000 files
// (lane/cycle paths, as a sequencer writes them): the closing transaction
// (which checks every file landed and journals the manifest's hash), the
// manifest and the crate made from the journal, both written create-only,
// and the closed transaction. The journal is real (SQLite, synchronous);
// the target is in memory, so the figure is ferry's own cost.
func BenchmarkClose10000(b *testing.B) {
	const n = 10_000
	ctx := context.Background()
	var manifestBytes, crateBytes int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		j, err := journal.Open(filepath.Join(b.TempDir(), "ferry.db"), journal.Options{})
		if err != nil {
			b.Fatal(err)
		}
		rel := fmt.Sprintf("run%d", i)
		ref := &journal.DatasetRef{Watch: "/out", RelPath: rel, Target: "t", KeyPrefix: "runs/" + rel + "/"}
		ss := make([]journal.Settled, n)
		for k := range ss {
			p := fmt.Sprintf("%s/Data/Intensities/BaseCalls/L%03d/C%d.1/L%03d_%d.cbcl", rel, k%4+1, k/40+1, k%4+1, (k/4)%10)
			ss[k] = journal.Settled{Watch: "/out", RelPath: p, Target: "t", Key: "runs/" + p, BatchID: rel, Dataset: ref,
				Version: journal.Version{Size: 4096, MtimeNS: int64(k), FileID: fmt.Sprint(k)}, Signal: "quiet"}
		}
		if _, err := j.RecordSettledBatch(ctx, ss); err != nil {
			b.Fatal(err)
		}
		for {
			jobs, err := j.Claim(ctx, 500)
			if err != nil {
				b.Fatal(err)
			}
			if len(jobs) == 0 {
				break
			}
			for x := range jobs {
				s := sha256.Sum256([]byte(jobs[x].RelPath))
				h := hex.EncodeToString(s[:])
				if err := j.RecordHashes(ctx, &jobs[x], h, []journal.Chunk{{Seq: 1, Size: 4096, SHA256: h}}); err != nil {
					b.Fatal(err)
				}
				if err := j.Complete(ctx, &jobs[x], h, jobs[x].Key); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := j.CompleteDataset(ctx, "/out", rel, dataset.CopyComplete, "completed", ""); err != nil {
			b.Fatal(err)
		}
		ds, err := j.Datasets(ctx, journal.DatasetFilter{RelPath: rel})
		if err != nil || len(ds) != 1 {
			b.Fatal(ds, err)
		}
		mem := memsink.New(memsink.Options{})
		c := &Closer{Journal: j, Sink: mem, FerryVersion: "bench"}
		b.StartTimer()
		d, err := c.Close(ctx, ds[0])
		b.StopTimer()
		if err != nil || d.State != journal.DatasetClosed || d.Files != n {
			b.Fatalf("close: %+v %v", d, err)
		}
		m, _ := mem.Get(ctx, "runs/"+rel+"/"+dataset.ManifestName, 1<<30)
		cr, _ := mem.Get(ctx, "runs/"+rel+"/"+dataset.CrateName, 1<<30)
		manifestBytes, crateBytes = len(m), len(cr)
		j.Close()
	}
	b.ReportMetric(float64(manifestBytes), "manifest-bytes")
	b.ReportMetric(float64(crateBytes), "crate-bytes")
}
