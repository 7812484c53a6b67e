package queue_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test of the package leaves no goroutine behind: the Store's, the
// client's, the fixtures'.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
