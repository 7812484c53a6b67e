package broker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// No goroutine outlives the tests: every server, transport and timer they
// start is stopped.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
