package uploader

import "time"

// The defaults of zero Options, RetryPolicy and BreakerPolicy fields
// (DefaultChunkSize is beside Options). internal/config fills the keys a
// configuration leaves out with these same constants: each default is
// written once.
const (
	DefaultWorkers = 4 // Options.Workers, max_concurrent_uploads

	DefaultRetryAttempts     = 5                // RetryPolicy.Attempts
	DefaultRetryInitialDelay = time.Second      // RetryPolicy.InitialDelay
	DefaultRetryMaxDelay     = 30 * time.Second // RetryPolicy.MaxDelay

	DefaultBreakerFailureThreshold = 5                // BreakerPolicy.FailureThreshold
	DefaultBreakerOpenTimeout      = 30 * time.Second // BreakerPolicy.OpenTimeout
	DefaultBreakerHalfOpenProbes   = 1                // BreakerPolicy.HalfOpenProbes
)

// orDefault sets *v to def when it is not positive (left out).
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
