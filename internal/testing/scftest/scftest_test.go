package scftest_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"carbroker/internal/testing/scftest"
)

// shape lists a type's fields as gob matches them: by name, with their
// kinds (int widths do not matter to gob, but are kept as the platform's).
func shape(t reflect.Type) string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return t.Kind().String()
	}
	var fields []string
	for i := range t.NumField() {
		f := t.Field(i)
		s := f.Type.Kind().String()
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Uint8 {
			s = "bytes"
		} else if k := f.Type.Kind(); k == reflect.Struct || k == reflect.Pointer || k == reflect.Slice {
			s = shape(f.Type)
		}
		fields = append(fields, f.Name+" "+s)
	}
	slices.Sort(fields)
	return "{" + strings.Join(fields, "; ") + "}"
}

// The runtime's messages are the platform's, field for field (see
// docs' reference: scf-platform.md, the Go1 runtime): a rename would break
// every invoke on SCF while in-process tests still passed.
func TestWireIsThePlatforms(t *testing.T) {
	frame := "{Label string; Line int32; Path string}"
	want := map[string]string{
		"InvokeRequest": "{ClientContext bytes; Deadline {Nanos int64; Seconds int64}; Environment string; FunctionName string; " +
			"FunctionTrace string; FunctionVersion string; InvokedFunctionUnique string; MemoryLimitInMb int32; Namespace string; " +
			"Payload bytes; RequestId string; TencentcloudAppID string; TencentcloudRegion string; TencentcloudUin string; " +
			"TimeLimitInMs int32; TraceId string}",
		"InvokeResponse": fmt.Sprintf("{Error {Message string; ShouldExit bool; StackTrace %s; Type string}; Payload bytes}", frame),
		"Ping":           "{}",
	}
	got := map[string]string{
		"InvokeRequest":  shape(reflect.TypeFor[scftest.InvokeRequest]()),
		"InvokeResponse": shape(reflect.TypeFor[scftest.InvokeResponse]()),
		"Ping":           shape(reflect.TypeFor[scftest.Ping]()),
	}
	for name := range want {
		if got[name] != want[name] {
			t.Errorf("%s:\n got %s\nwant %s", name, got[name], want[name])
		}
	}
}
