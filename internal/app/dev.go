package app

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"carbroker/internal/caremu"
)

// devPool is the embedded emulator's pool in dev mode, from the DEV_*
// variables (dev mode only; nothing else reads them).
type devPool struct {
	Concurrency int           // DEV_POOL_SIZE, default 4
	Retention   time.Duration // DEV_RETENTION, default 90s (CAR's documented default)
	ClientWait  time.Duration // DEV_CLIENT_WAIT, default 30s (the emulator's approximation)
}

func loadDevPool(getenv func(string) string) (devPool, error) {
	p := devPool{Concurrency: 4, Retention: 90 * time.Second, ClientWait: 30 * time.Second}
	var problems []string
	if v := getenv("DEV_POOL_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problems = append(problems, fmt.Sprintf("DEV_POOL_SIZE=%q: want a whole number from 1 to 1000", v))
		} else {
			p.Concurrency = n
		}
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"DEV_RETENTION", &p.Retention}, {"DEV_CLIENT_WAIT", &p.ClientWait}} {
		v := getenv(d.name)
		if v == "" {
			continue
		}
		t, err := time.ParseDuration(v)
		if err != nil || t < time.Second || t > 24*time.Hour {
			problems = append(problems, fmt.Sprintf("%s=%q: want a duration from 1s to 24h, e.g. 90s", d.name, v))
			continue
		}
		*d.to = t
	}
	if len(problems) > 0 {
		return p, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return p, nil
}

func (p devPool) options() caremu.Options {
	return caremu.Options{Concurrency: p.Concurrency, Retention: p.Retention, ClientWait: p.ClientWait}
}
