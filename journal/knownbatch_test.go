package journal

import (
	"context"
	"fmt"
	"testing"
)

// TestKnownBatchAgreesWithKnown: over more files than one query takes,
// KnownBatch answers what Known answers file by file: journaled versions
// known, another version, another watch or an unknown path not.
func TestKnownBatchAgreesWithKnown(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	var ss []Settled
	for i := range 1200 {
		ss = append(ss, settled(fmt.Sprintf("run/f%04d", i), int64(i+1)))
	}
	if _, err := j.RecordSettledBatch(ctx, ss); err != nil {
		t.Fatal(err)
	}
	var rels []string
	var vs []Version
	for i := range 1300 {
		v := Version{Size: int64(i + 1), MtimeNS: 1, FileID: "1:2"}
		if i%7 == 0 {
			v.Size++ // another version
		}
		if i%11 == 0 {
			v.FileID = "1:3"
		}
		rels = append(rels, fmt.Sprintf("run/f%04d", i)) // past 1199: never journaled
		vs = append(vs, v)
	}
	got, err := j.KnownBatch(ctx, "/data", rels, vs)
	if err != nil {
		t.Fatal(err)
	}
	known := 0
	for i := range rels {
		want, err := j.Known(ctx, "/data", rels[i], vs[i])
		if err != nil {
			t.Fatal(err)
		}
		if got[i] != want {
			t.Errorf("%s %+v: KnownBatch %v, Known %v", rels[i], vs[i], got[i], want)
		}
		if want {
			known++
		}
	}
	if known == 0 || known == len(rels) {
		t.Fatalf("%d of %d known: the case tests nothing", known, len(rels))
	}
	if other, err := j.KnownBatch(ctx, "/other", rels[:10], vs[:10]); err != nil || other[1] {
		t.Fatalf("another watch: %v, %v", other, err)
	}
}
