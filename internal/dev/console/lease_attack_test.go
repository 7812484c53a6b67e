package console_test

import (
	"testing"
	"time"
)

// SESSION_MAX may be up to a year. A lease ending more than 24.8 days away
// is past what setTimeout can wait (2^31-1 ms): a browser then runs the
// callback at once, telling the user its session is about to end.
func TestModuleReproOnExpiringFarAway(t *testing.T) {
	end := time.Now().Add(40 * 24 * time.Hour).UTC().Truncate(time.Second)
	f := newFake(t,
		reply{status: 200, body: `{"UserId":"u","ServerSession":"ss","RequestId":"r","ExpiresAt":"` + end.Format(time.RFC3339) + `"}`},
	)
	got := run[struct{ Fired bool }](t, f, `
		const b = createBroker({ baseUrl: location.origin, userId: "u", storage: null });
		let fired = false;
		await b.start({ clientSession: "cs", onExpiring: () => { fired = true; } });
		await new Promise((ok) => setTimeout(ok, 300));
		b.forget?.();
		return { Fired: fired };
	`)
	if got.Fired {
		t.Errorf("onExpiring ran at once for a lease ending %s", end.Format(time.RFC3339))
	}
}
