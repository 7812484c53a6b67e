// Package crossing measures which of our packages one POST /session runs
// code in, in event mode: the deployed binary (make build's -tags scf),
// built with coverage counters, serves a warm-up start and then one more,
// against the CAR emulator; the packages whose counters moved between a
// run without the second start and a run with it are the ones it crosses;
// the test fails past issue 17's goal of 8.
//
//	go test -run Crossing -v ./internal/testing/crossing
//
// It skips under -short (it builds the binary with counters). Set
// CROSSING_BLOCKS=1 to see the blocks that moved.
package crossing
