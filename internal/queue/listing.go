package queue

import "carbroker/internal/config"

// LineKeys names the two keys of a project's line that list who waits: the
// line (a sorted set of user → join sequence, first first) and seen (user →
// the time of its last poll in Unix milliseconds). Read-only views (the dev
// console's) use them; the line itself changes only through line.lua.
func LineKeys(prefix, project string) (line, seen string) {
	if prefix == "" {
		prefix = config.Defaults().Queue.KeyPrefix
	}
	k := (&Store{o: Options{Prefix: prefix}}).keys(project, "")
	return k[0], k[1]
}
