package emulator_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every delivery goroutine and header sniffer must be gone once the
// servers are closed. Idle keep-alive connections of the shared HTTP
// clients are not the emulator's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}
