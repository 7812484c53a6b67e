package broker

import (
	"context"
	"time"

	"carbroker/internal/fault"
	"carbroker/internal/queue"
)

// A project's count (CAR's DescribeConcurrentCount) is asked at most once a
// second per project: across instances through the line's store (capacity),
// within an instance by sharing one call and its answer (count).

// describeBudget bounds a count refresh inside a poll.
const describeBudget = 2 * time.Second

// counting is one project's DescribeConcurrentCount in this instance: the
// last answer (a count or a failure) and the call in flight.
type counting struct {
	at   time.Time // when the last call started, on the line's clock
	c    queue.Count
	err  error
	done chan struct{} // not nil while a call is in flight; closed when it ends
}

// count is the project's DescribeConcurrentCount as this instance knows
// it: an answer whose call started less than a second ago, a failure or a
// slow answer alike (CAR is asked at most once a second), else the answer
// of the call in flight (concurrent callers share one call), else a new
// call's.
func (s *Service) count(ctx context.Context, project string) (queue.Count, error) {
	if c, err, ok := s.recent(ctx, project); ok {
		return c, err
	}
	s.mu.Lock()
	k := s.counting(project)
	if k.done != nil { // another caller started one meanwhile
		s.mu.Unlock()
		c, err, _ := s.recent(ctx, project)
		return c, err
	}
	done := make(chan struct{})
	k.done = done
	s.mu.Unlock()

	at := s.o.Now()
	c, err := s.describe(ctx, project, at)
	shared := err
	if err != nil && ctx.Err() != nil {
		// This caller went away while CAR was asked: the others sharing
		// the call learn that the count is not there this second (the call
		// was made: CAR is not asked again before the second is out).
		shared = refreshing(err)
	}
	s.mu.Lock()
	k.at, k.c, k.err, k.done = at, c, shared, nil
	s.mu.Unlock()
	close(done)
	return c, err
}

// recent answers from this instance's last DescribeConcurrentCount if its
// call started less than a second ago, or waits for the call in flight; ok
// is false when neither is there.
func (s *Service) recent(ctx context.Context, project string) (c queue.Count, err error, ok bool) {
	s.mu.Lock()
	k := s.counting(project)
	if done := k.done; done != nil {
		s.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return queue.Count{}, capacityTimeout(ctx), true
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return k.c, k.err, true
	}
	defer s.mu.Unlock()
	if age := s.o.Now().Sub(k.at); k.at.IsZero() || age >= time.Second || age < 0 {
		return queue.Count{}, nil, false
	}
	return k.c, k.err, true
}

// counting returns the project's entry; s.mu must be held.
func (s *Service) counting(project string) *counting {
	k := s.counts[project]
	if k == nil {
		k = &counting{}
		s.counts[project] = k
	}
	return k
}

func (s *Service) describe(ctx context.Context, project string, at time.Time) (queue.Count, error) {
	ctx, cancel := context.WithTimeout(ctx, describeBudget)
	defer cancel()
	cc, err := s.car.DescribeConcurrentCount(ctx, project, "")
	if err != nil {
		return queue.Count{}, err
	}
	return queue.Count{Total: int(cc.Total), Running: int(cc.Running), At: at}, nil
}

// Capacity is a project's pool and line.
type Capacity struct {
	Total, Running int
	Idle           int // what the line can still hand out: Total - Running less grants since the count
	Waiting        int // places polled within QUEUE_ABANDON
}

// staleWait is how long a capacity read waits for another instance's
// refresh between looks.
const staleWait = 50 * time.Millisecond

// capacity reads the project's count and the length of its line. CAR's
// DescribeConcurrentCount runs at most once a second per project across
// instances, also when it fails or is slow: the line's 1 s lease lets one
// caller refresh the shared count (a failed refresh keeps the lease for its
// second), and within an instance concurrent callers share one call and
// its answer, a failure included, for a second. With the line off or
// degraded the instance's own count is used (once a second per instance).
func (s *Service) capacity(ctx context.Context, project string) (Capacity, error) {
	st := s.o.Line
	if st == nil {
		return s.localCapacity(ctx, project)
	}
	for deadline := time.Now().Add(describeBudget); time.Now().Before(deadline); {
		d, err := st.Capacity(ctx, project, nil)
		if err != nil {
			if ctx.Err() != nil {
				return Capacity{}, capacityTimeout(ctx)
			}
			return s.localCapacity(ctx, project) // degraded
		}
		switch d.Verdict {
		case queue.OK:
			return Capacity{Total: d.Total, Running: d.Running, Idle: d.Idle, Waiting: d.Waiting}, nil
		case queue.Refresh:
			c, err := s.count(ctx, project)
			if err != nil {
				return Capacity{}, err // the lease stays for its second: nobody asks CAR again before
			}
			return s.storeCount(ctx, project, c, d.Waiting), nil
		}
		// Another caller is refreshing: in this instance, share its call
		// (or its answer of this second); elsewhere, look again shortly.
		if c, err, ok := s.recent(ctx, project); ok {
			if err != nil {
				return Capacity{}, err
			}
			return counted(c, d.Waiting), nil
		}
		t := time.NewTimer(staleWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Capacity{}, capacityTimeout(ctx)
		case <-t.C:
		}
	}
	// Other instances kept refreshing without storing a count: asking CAR
	// here would exceed the once a second.
	return Capacity{}, refreshing(nil)
}

// storeCount writes a fresh count into the line and answers the line's
// view; if that fails, or the count went stale meanwhile (a slow CAR), the
// count as read and the line's length as first read.
func (s *Service) storeCount(ctx context.Context, project string, c queue.Count, waiting int) Capacity {
	d, err := s.o.Line.Capacity(ctx, project, &c)
	if err != nil || d.Verdict != queue.OK {
		return counted(c, waiting)
	}
	return Capacity{Total: d.Total, Running: d.Running, Idle: d.Idle, Waiting: d.Waiting}
}

// counted is the capacity a CAR count gives, with waiting in line.
func counted(c queue.Count, waiting int) Capacity {
	return Capacity{Total: c.Total, Running: c.Running, Idle: max(0, c.Total-c.Running), Waiting: waiting}
}

// localCapacity is the instance's own count, without the line.
func (s *Service) localCapacity(ctx context.Context, project string) (Capacity, error) {
	c, err := s.count(ctx, project)
	if err != nil {
		return Capacity{}, err
	}
	return counted(c, 0), nil
}

// refreshing is the answer while another caller's count refresh has not
// stored a count: try again in a second.
func refreshing(cause error) error {
	return &fault.Error{Kind: fault.Unavailable, RetryAfter: time.Second, Err: cause,
		Message: "the project's count is being refreshed; try again shortly"}
}

// capacityTimeout is the answer of a capacity read whose request ran out.
func capacityTimeout(ctx context.Context) error {
	return fault.Wrap(fault.Timeout, "the capacity could not be read in time", ctx.Err())
}
