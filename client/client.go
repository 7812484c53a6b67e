// Package client holds the browser client of the function, carbroker.js and
// its types, for app developers to copy or bundle; dev mode serves them (and
// the dev console is built on them).
package client

import "embed"

// Files holds carbroker.js and carbroker.d.ts.
//
//go:embed carbroker.js carbroker.d.ts
var Files embed.FS
