package uploader

import "time"

// requeueDelay is how long a file waits in the journal after a request ran
// out of retries: it doubles with the file's attempts, from 30 s to 1 h,
// with jitter so that files queued together do not return together.
func requeueDelay(attempts int, rnd func(time.Duration) time.Duration) time.Duration {
	const base, max = 30 * time.Second, time.Hour
	d := base
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rnd(d/2)
}
