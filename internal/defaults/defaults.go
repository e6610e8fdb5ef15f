// Package defaults fills the fields of an options struct that were left
// out (zero, or a negative that makes no sense) with their documented
// defaults: the convention of every ferry package whose zero options mean
// "use the defaults".
package defaults

import "time"

// Set sets *v to def when it is not positive.
func Set[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
