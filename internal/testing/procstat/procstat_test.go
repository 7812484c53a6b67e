package procstat_test

import (
	"os"
	"runtime"
	"testing"

	"carbroker/internal/testing/procstat"
)

func TestPeakRSSOfThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	n, err := procstat.PeakRSS(os.Getpid())
	if err != nil || n < 1<<20 || n > 1<<34 {
		t.Fatalf("PeakRSS = %d, %v", n, err)
	}
	if _, err := procstat.PeakRSS(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
