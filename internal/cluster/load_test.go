package cluster

import (
	"errors"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCPUSamplerArithmetic(t *testing.T) {
	wall := time.Unix(1000, 0)
	cpu := 10 * time.Second
	var fail error
	s := newCPUSampler(func() (time.Duration, error) { return cpu, fail }, func() time.Time { return wall })
	steps := []struct {
		dWall, dCPU time.Duration
		err         error
		want        float64
	}{
		{time.Second, 500 * time.Millisecond, nil, 0.5},
		{2 * time.Second, 3 * time.Second, nil, 1.5},
		{0, time.Second, nil, 1.5},                       // same instant: previous figure
		{time.Second, time.Second, errors.New("x"), 1.5}, // failed reading: previous figure
		{time.Second, 0, nil, 1},                         // 2 s of CPU over the 2 s since the last good sample
		{time.Second, -time.Second, nil, 0},              // CPU time never goes back: clamp
	}
	for i, st := range steps {
		wall = wall.Add(st.dWall)
		cpu += st.dCPU
		fail = st.err
		got := s.Sample()
		if math.Abs(got-st.want) > 1e-9 {
			t.Errorf("step %d: Sample = %g, want %g", i, got, st.want)
		}
	}
}

// procCPUTime reads utime+stime of this process from /proc/self/stat, in
// clock ticks of 10 ms: an independent measure to check getrusage against.
func procCPUTime(t *testing.T) time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/self/stat: %v %v", err1, err2)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// TestCPUSamplerReal burns CPU and checks the sampler's figure against
// /proc/self/stat.
func TestCPUSamplerReal(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checked against /proc/self/stat")
	}
	s := NewCPUSampler()
	time.Sleep(200 * time.Millisecond)
	if idle := s.Sample(); idle > 0.5 {
		t.Errorf("idle process measured at %.2f cores", idle)
	}
	start, procStart := time.Now(), procCPUTime(t)
	cpuStart, err := processCPUTime()
	if err != nil {
		t.Fatal(err)
	}
	// Burn 300 ms of CPU time, whatever the machine's load (at most 10 s).
	x := 1.0
	for time.Since(start) < 10*time.Second {
		for range 100000 {
			x = math.Sqrt(x + 1)
		}
		if c, _ := processCPUTime(); c-cpuStart >= 300*time.Millisecond {
			break
		}
	}
	busy := s.Sample()
	wall := time.Since(start)
	procUsed := procCPUTime(t) - procStart
	// busy covers a slightly longer window than procUsed (from the idle
	// sample on): compare CPU seconds, with the tick granularity as slack.
	seen := time.Duration(busy * float64(wall+200*time.Millisecond))
	if seen < procUsed-50*time.Millisecond {
		t.Errorf("sampler saw %s of CPU, /proc/self/stat %s (x=%g)", seen, procUsed, x)
	}
	if busy <= 0 || busy > float64(runtime.NumCPU())+0.5 {
		t.Errorf("busy process measured at %.2f cores on %d CPUs", busy, runtime.NumCPU())
	}
	t.Logf("busy: %.2f cores over %s; /proc/self/stat: %s CPU", busy, wall.Round(time.Millisecond), procUsed)
}
