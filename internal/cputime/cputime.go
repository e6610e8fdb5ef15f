// Package cputime reads the CPU time the process has used, for the
// benchmarks that report CPU per file, per request or per round (the
// machine is shared, so CPU is steadier than wall time).
package cputime

import "time"

// Self is the CPU (user and system) this process has used so far, garbage
// collection included; false where the system does not tell (Windows).
func Self() (time.Duration, bool) { return self() }
