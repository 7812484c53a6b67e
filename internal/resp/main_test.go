package resp

import (
	"testing"

	"go.uber.org/goleak"
)

// No test leaves a goroutine behind: the client starts none of its own.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
