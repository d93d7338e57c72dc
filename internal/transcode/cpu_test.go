package transcode

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/media"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux platform Go supports.
const clockTicks = 100

// procCPU returns the user+system CPU time of process pid.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after "(comm)": state is the first, utime the 12th, stime the 13th.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// procMem returns the resident set size of process pid and its anonymous
// (private dirty) part in KiB: the rest is library pages every ffmpeg
// process shares.
func procMem(pid int) (rss, anon int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "Rss":
			rss = n
		case "Private_Dirty":
			anon = n
		}
	}
	return rss, anon
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFFmpegCPU measures what one converted stream costs: a stream fed
// in real time, ffmpeg's CPU time read from /proc/PID/stat over 10 s after
// a second of warm-up, as a percentage of one core ("ffmpeg-%cpu"), its
// resident and anonymous memory, and this process's CPU over the same time ("go-%cpu",
// the framing and parsing, with the test's own feeding). Run it with
//
//	go test -run '^$' -bench FFmpegCPU ./internal/transcode
//
// It takes about 25 s.
func BenchmarkFFmpegCPU(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("needs /proc")
	}
	needFFmpeg(b)
	const warmup, window = time.Second, 10 * time.Second
	seconds := (warmup + window + time.Second).Seconds()
	for _, c := range []struct {
		name string
		in   func() clip
		to   media.Codec
	}{
		{"aac48k-stereo-to-opus", func() clip { return genAAC(b, 48000, 2, seconds) }, media.CodecOpus},
		{"opus-stereo-to-aac", func() clip { return genOpus(b, 2, seconds) }, media.CodecAAC},
	} {
		b.Run(c.name, func(b *testing.B) {
			in := c.in()
			for range b.N {
				tc, err := NewFFmpeg(b.Context(), in.track, c.to, FFmpegOptions{})
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for range tc.Output() {
					}
				}()
				pid := tc.Stats().PID
				var cpu0, self0 time.Duration
				var t0 time.Time
				start := time.Now()
				for _, f := range in.frames {
					time.Sleep(time.Until(start.Add(f.PTS)))
					if t0.IsZero() && f.PTS >= warmup {
						t0, self0 = time.Now(), selfCPU()
						if cpu0, err = procCPU(pid); err != nil {
							b.Fatal(err)
						}
					}
					if !t0.IsZero() && time.Since(t0) >= window {
						break
					}
					_ = tc.Write(f)
				}
				cpu1, err := procCPU(pid)
				if err != nil {
					b.Fatal(err)
				}
				el := time.Since(t0)
				self := selfCPU() - self0
				rss, anon := procMem(pid)
				_ = tc.Close()
				st := tc.Stats()
				if st.Restarts != 0 || st.DroppedIn != 0 {
					b.Fatalf("restarts or drops: %+v", st)
				}
				b.ReportMetric(100*(cpu1-cpu0).Seconds()/el.Seconds(), "ffmpeg-%cpu")
				b.ReportMetric(100*self.Seconds()/el.Seconds(), "go-%cpu")
				b.ReportMetric(float64(rss)/1024, "ffmpeg-rss-MiB")
				b.ReportMetric(float64(anon)/1024, "ffmpeg-anon-MiB")
			}
		})
	}
}
