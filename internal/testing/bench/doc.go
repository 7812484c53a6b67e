// Package bench holds the broker's benchmarks, and nothing else:
//
//   - the per-request overhead of the function on top of CAR's own time:
//     POST /session through the real wiring (configuration, CAR client,
//     use case, AUTH_MODE=none, HTTP API) against the CAR emulator's
//     in-process transport, served by ServeHTTP, by net/http on loopback and
//     as an SCF event invoke (directly and over net/rpc), next to a baseline
//     that makes only the same two CAR calls through the same client;
//   - from the deployable binary (built as make build does): cold start,
//     exec to the first successful answer, in HTTP, dev and event mode; its
//     size; and its peak RSS (VmHWM) under 64 concurrent requests.
//
// Run them with make bench, or go test -run '^$' -bench . -benchmem
// ./internal/testing/bench/. The benchmarks that build or exec the binary skip
// under -short and need Linux. docs/performance.md has the figures and how
// to read them.
package bench
