package scfdeploy

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"carbroker/internal/deploy/deploytest"
	"carbroker/internal/deploy/scfemu"
)

// TestCredentialOptionHoldingAtOrQuestionMark: a password given as an
// option (?password=…, ?token=…) may hold "@" (TencentDB's
// account@password) or "?". The broker's URL rule reads the credentials up
// to the LAST "@", so redis://host:6379/0?password=acct@pw reads as a
// password "6379/0?password=acct" and a host "pw": masking by that rule
// alone printed the option's password after the "@" in the plan, and an
// API error quoting the option's value went out as it is. 5a76942 masked
// both (the option's value by its own parser): found by a differential of
// old and new masking over generated URLs (attack).
func TestCredentialOptionHoldingAtOrQuestionMark(t *testing.T) {
	for _, c := range []struct{ key, value, secret, tail string }{
		{"QUEUE_REDIS_URL", "redis://10.0.0.5:6379/0?password=acct@hunter2-query-secret", "acct@hunter2-query-secret", "hunter2-query-secret"},
		{"JWT_JWKS_URL", "https://idp.example.com/jwks.json?token=acct@jwks-query-secret", "acct@jwks-query-secret", "jwks-query-secret"},
		{"WEBHOOK_URL", "https://hooks.example.com/x?pass=pa?ss-option-secret", "pa?ss-option-secret", "ss-option-secret"},
		{"OTHER_URL", "redis://h:6379?x=1&auth=ab@cd?ef-option-secret&y=2", "ab@cd?ef-option-secret", "ef-option-secret"},
	} {
		if got := Masked(c.key, c.value); strings.Contains(got, c.tail) {
			t.Errorf("the plan shows %s's option password: %s", c.key, got)
		}
		s := &Spec{Variables: []Variable{{c.key, c.value}}}
		quoted := `InvalidParameterValue: Environment [{"Key":"` + c.key + `","Value":"` + c.secret + `"}] (` + c.secret + `)`
		if got := redact(errors.New(quoted), s).Error(); strings.Contains(got, c.tail) {
			t.Errorf("an API error quoting %s's option password goes out: %s", c.key, got)
		}
	}
}

// TestPlanMasksAPasswordOptionHoldingAt: the same through make deploy: a
// QUEUE_REDIS_URL with ?password=account@password passes the function's
// configuration check (read as a host after the last "@"), and the dry
// run's plan and a refused create's error must not show the password.
func TestPlanMasksAPasswordOptionHoldingAt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scfemu.Options{})
		h.env["QUEUE_REDIS_URL"] = "redis://10.0.0.5:6379/0?password=acct@hunter2-query-secret"
		_, err, calls := h.deploy("serverless.yml", deploytest.TinyZip(t, ""), true)
		if len(writes(calls)) != 0 {
			t.Fatalf("a dry run wrote %v", writes(calls))
		}
		if strings.Contains(h.out.String(), "hunter2-query-secret") {
			t.Errorf("the plan shows the password (%v):\n%s", err, h.out.String())
		}
		h.out.Reset()
		h.em.ErrorNext("CreateFunction", "InvalidParameterValue.Environment",
			`Environment [{"Key":"QUEUE_REDIS_URL","Value":"acct@hunter2-query-secret"}] is not valid`, 1)
		if _, err, _ = h.deploy("serverless.yml", deploytest.TinyZip(t, ""), false); err == nil {
			t.Fatal("the refused create succeeded")
		}
		if strings.Contains(h.out.String(), "hunter2-query-secret") {
			t.Errorf("the output shows the password:\n%s", h.out.String())
		}
	})
}
