package journal

import "context"

// PendingTargets counts, by target name, the files waiting to be uploaded
// (queued or uploading). The uploader uses it to leave alone the files of a
// target taken out of the configuration.
func (j *Journal) PendingTargets(ctx context.Context) (map[string]int, error) {
	rows, err := j.r.QueryContext(ctx, `SELECT target, COUNT(*) FROM files WHERE state IN ('queued', 'uploading') GROUP BY target`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		out[name] = n
	}
	return out, rows.Err()
}
