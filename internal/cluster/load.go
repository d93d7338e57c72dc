package cluster

import (
	"sync"
	"time"
)

// CPUSampler measures the CPU time this process used between two samples,
// in cores: user plus system time over wall time (1.0 = one core busy).
type CPUSampler struct {
	usage func() (time.Duration, error)
	now   func() time.Time

	mu       sync.Mutex
	lastCPU  time.Duration
	lastWall time.Time
	last     float64
}

// NewCPUSampler returns a sampler whose first Sample covers the time since
// this call.
func NewCPUSampler() *CPUSampler {
	return newCPUSampler(processCPUTime, time.Now)
}

// newCPUSampler is NewCPUSampler with its sources injected (tests).
func newCPUSampler(usage func() (time.Duration, error), now func() time.Time) *CPUSampler {
	s := &CPUSampler{usage: usage, now: now}
	s.lastCPU, _ = usage()
	s.lastWall = now()
	return s
}

// Sample returns the cores used since the previous Sample. Two samples in
// the same instant, or a failing usage reading, return the previous figure.
func (s *CPUSampler) Sample() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	cpu, err := s.usage()
	wall := s.now()
	if err != nil {
		return s.last
	}
	dw := wall.Sub(s.lastWall)
	if dw <= 0 {
		return s.last
	}
	dc := max(cpu-s.lastCPU, 0)
	s.lastCPU, s.lastWall = cpu, wall
	s.last = dc.Seconds() / dw.Seconds()
	return s.last
}
