package testsrv

import (
	"testing"
	"time"
)

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago,
// for a server the test starts itself (ferry's metrics endpoints, say).
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Eventually polls cond until it holds or timeout passes, then fails the
// test with what it waited for and cond's last word on the state. Polling
// is what a test of real processes and servers does; timer logic is
// tested with testing/synctest instead.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state:\n%s", timeout, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
