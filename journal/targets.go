package journal

import "context"

// PendingTargets counts, by target name, the files waiting to be uploaded
// (queued or uploading). The uploader uses it to leave alone the files of a
// target taken out of the configuration.
func (j *Journal) PendingTargets(ctx context.Context) (map[string]int, error) {
	return j.countBy(ctx, `SELECT target, COUNT(*) FROM files WHERE `+inStates(Queued, Uploading)+` GROUP BY target`)
}
