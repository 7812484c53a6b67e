package config

import (
	"strings"
	"testing"
)

// A renewal count without SESSION_RENEW=true does nothing (every renewal
// is refused "renewals are off"): like every lease setting that would do
// nothing, it is refused at start, naming both settings.
func TestLeaseReproRenewMaxWithoutRenew(t *testing.T) {
	base := map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "none", "QUEUE_REDIS_URL": "redis://127.0.0.1:6379",
		"SESSION_MAX": "10m", "SESSION_RENEW_MAX": "3"}
	_, err := Load(func(k string) string { return base[k] }, Options{})
	if err == nil || !strings.Contains(err.Error(), "SESSION_RENEW_MAX") || !strings.Contains(err.Error(), "SESSION_RENEW=true") {
		t.Errorf("SESSION_RENEW_MAX=3 without SESSION_RENEW: %v", err)
	}
}
