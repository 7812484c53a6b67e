package caremu

import (
	"maps"
	"time"
)

// slot is one concurrency. A lock is an overlay on the base state, so that
// ApplyConcurrent on a live session does not end it. Invariant after settle:
// user == "" exactly when base is Idle and the slot is not locked.
type slot struct {
	id        int
	base      State             // Idle, Session, Retained or Stopping
	user      string            // the owner
	connected bool              // in Session: the owner's client has connected (Connect)
	until     time.Time         // end of Retained or Stopping; in Session without a client, when it is retained
	lockUntil time.Time         // end of the lock; zero when not locked
	guests    map[string]string // room members other than the owner: UserId → Role
}

// settle applies every expiry due at now. A session whose client has not
// connected by its deadline is retained from that deadline, as if its client
// had left then, so one settle may carry it through retention to idle.
func (s *slot) settle(now time.Time, retention time.Duration) {
	if !s.lockUntil.IsZero() && !now.Before(s.lockUntil) {
		s.lockUntil = time.Time{}
	}
	if s.base == Session && !s.connected && !s.until.IsZero() && !now.Before(s.until) {
		s.base, s.until = Retained, s.until.Add(retention)
	}
	if (s.base == Retained || s.base == Stopping) && !now.Before(s.until) {
		s.base, s.until = Idle, time.Time{}
	}
	if s.base == Idle || s.base == Stopping {
		s.guests = nil
	}
	if s.base == Idle && s.lockUntil.IsZero() {
		s.user = ""
	}
}

func (s *slot) state() State {
	if !s.lockUntil.IsZero() {
		return Locked
	}
	return s.base
}

func (s *slot) snapshot() Slot {
	v := Slot{ID: s.id, State: s.state(), UserID: s.user, Guests: maps.Clone(s.guests)}
	switch v.State {
	case Locked:
		v.Until = s.lockUntil
	case Session:
		v.Connected, v.Until = s.connected, s.until
	case Retained, Stopping:
		v.Until = s.until
	}
	return v
}

// settleLocked settles every slot and returns the pool clock.
func (e *Emulator) settleLocked() time.Time {
	now := e.nowLocked()
	for _, s := range e.slots {
		s.settle(now, e.opt.Retention)
	}
	return now
}

// owned returns userID's own slot, or nil. Call after settleLocked.
func (e *Emulator) owned(userID string) *slot {
	if userID == "" {
		return nil
	}
	for _, s := range e.slots {
		if s.user == userID {
			return s
		}
	}
	return nil
}

// leaveRooms removes userID from any room it is a guest in.
func (e *Emulator) leaveRooms(userID string) bool {
	left := false
	for _, s := range e.slots {
		if _, ok := s.guests[userID]; ok {
			delete(s.guests, userID)
			left = true
		}
	}
	return left
}

func (e *Emulator) applyConcurrent(p map[string]string) error {
	now := e.settleLocked()
	userID := p["UserId"]
	s := e.owned(userID)
	if s != nil && s.base == Stopping {
		return errorf("UnsupportedOperation.Stopping", "the session of this UserId is being destroyed")
	}
	if s == nil {
		for _, free := range e.slots {
			if free.user == "" {
				s = free
				break
			}
		}
	}
	if s == nil {
		return errorf("ResourceNotFound.NoIdle", "no idle concurrency")
	}
	s.user = userID
	s.lockUntil = now.Add(e.opt.LockTime)
	return nil
}

func (e *Emulator) createSession(p map[string]string) (string, error) {
	now := e.settleLocked()
	userID, host := p["UserId"], p["HostUserId"]
	own := e.owned(userID)
	locked := own != nil && !own.lockUntil.IsZero()

	if host != "" && host != userID {
		return e.joinRoom(userID, host, p["Role"], own, locked)
	}
	if !locked {
		return "", errorf("FailedOperation.LockTimeout", "no concurrency is locked for this UserId: call ApplyConcurrent first")
	}
	if own.base == Session {
		e.takeovers[userID]++ // the previously connected device is disconnected
	}
	e.leaveRooms(userID)
	own.base, own.until, own.lockUntil, own.connected = Session, time.Time{}, time.Time{}, e.opt.ClientWait < 0
	if !own.connected { // the new ServerSession waits for its client
		own.until = now.Add(e.opt.ClientWait)
	}
	return newServerSession(), nil
}

// joinRoom seats a guest in the host's room.
func (e *Emulator) joinRoom(userID, host, role string, own *slot, locked bool) (string, error) {
	if e.opt.GuestNeedsLock && !locked {
		return "", errorf("FailedOperation.LockTimeout", "no concurrency is locked for this UserId: call ApplyConcurrent first")
	}
	room := e.owned(host)
	if room == nil || room.base != Session {
		return "", errorf("ResourceNotFound.SessionNotFound", "the host of this room has no session")
	}
	if role == "" {
		role = RolePlayer
	}
	players, viewers := 1, 0 // the host holds a Player seat
	for id, r := range room.guests {
		switch {
		case id == userID:
		case r == RolePlayer:
			players++
		default:
			viewers++
		}
	}
	if role == RolePlayer && players >= e.opt.MaxPlayers ||
		role == RoleViewer && e.opt.MaxViewers > 0 && viewers >= e.opt.MaxViewers {
		return "", errorf("LimitExceeded.Role", "the role "+role+" is full in this room")
	}
	if _, ok := room.guests[userID]; ok {
		e.takeovers[userID]++
	}
	e.leaveRooms(userID)
	if room.guests == nil {
		room.guests = map[string]string{}
	}
	room.guests[userID] = role
	if locked && e.opt.GuestNeedsLock { // the guest's own concurrency is not needed any more
		*own = slot{id: own.id, base: Idle}
	}
	return newServerSession(), nil
}

func (e *Emulator) destroySession(userID string) error {
	now := e.settleLocked()
	e.leaveRooms(userID)
	if s := e.owned(userID); s != nil && s.base != Stopping {
		s.base, s.until, s.connected = Stopping, now.Add(e.opt.StopTime), false
		s.lockUntil, s.guests = time.Time{}, nil
	}
	return nil
}

// countLocked returns the pool size and the slots that are not idle.
func (e *Emulator) countLocked() (total, running int) {
	e.settleLocked()
	for _, s := range e.slots {
		if s.state() != Idle {
			running++
		}
	}
	return len(e.slots), running
}

// Connect simulates userID's client connecting with its ServerSession
// (TCGSDK.start): the session then stays until Disconnect or DestroySession
// instead of being retained after Options.ClientWait. It reports whether
// userID had a session waiting for its client.
func (e *Emulator) Connect(userID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settleLocked()
	s := e.owned(userID)
	if s == nil || s.base != Session || s.connected {
		return false
	}
	s.connected, s.until = true, time.Time{}
	return true
}

// Disconnect simulates userID's client closing without DestroySession: its
// session, whether its client had connected or not, is retained for
// Options.Retention, or it leaves the room it is a guest in. It reports
// whether anything changed.
func (e *Emulator) Disconnect(userID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.settleLocked()
	changed := e.leaveRooms(userID)
	if s := e.owned(userID); s != nil && s.base == Session {
		s.base, s.until, s.connected = Retained, now.Add(e.opt.Retention), false
		changed = true
	}
	return changed
}

// State returns a snapshot of every slot, by ID.
func (e *Emulator) State() []Slot {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settleLocked()
	out := make([]Slot, len(e.slots))
	for i, s := range e.slots {
		out[i] = s.snapshot()
	}
	return out
}

// SlotOf returns the slot userID owns or, for a guest, its host's slot.
func (e *Emulator) SlotOf(userID string) (Slot, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settleLocked()
	if s := e.owned(userID); s != nil {
		return s.snapshot(), true
	}
	for _, s := range e.slots {
		if _, ok := s.guests[userID]; ok {
			return s.snapshot(), true
		}
	}
	return Slot{}, false
}

// Count returns what DescribeConcurrentCount would answer.
func (e *Emulator) Count() (total, running int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.countLocked()
}
