package exchange

import (
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/hub"
)

// BenchmarkSegmenting measures the CPU one stream's HLS packaging costs: the
// test file's frames are fed, looped, into a gohlslib muxer through the
// feeder, as the live path does. It reports the share of one core needed per
// stream in real time (media seconds packaged per CPU second).
func BenchmarkSegmenting(b *testing.B) {
	for _, v := range []HLSVariant{HLSLowLatency, HLSMPEGTS} {
		b.Run(v.String(), func(b *testing.B) {
			tracks, frames := readFLV(b, "h264aac.flv")
			plan, err := planTracks(tracks, v)
			require.NoError(b, err)
			opts := HLSOptions{Variant: v}
			opts.setDefaults()
			m := &gohlslib.Muxer{
				Tracks:             []*gohlslib.Track{plan.video.hls, plan.audio.hls},
				Variant:            v.gohlslib(),
				SegmentCount:       opts.SegmentCount,
				SegmentMinDuration: opts.SegmentMinDuration,
				PartMinDuration:    opts.PartMinDuration,
			}
			require.NoError(b, m.Start())
			defer m.Close()
			f := newFeeder(m, &hub.TrackSet{Tracks: tracks}, plan, opts)
			var period time.Duration
			for _, fr := range frames {
				period = max(period, fr.DTS+33*time.Millisecond)
			}
			now := time.Now()
			b.ResetTimer()
			var media time.Duration
			for i := 0; i < b.N; i++ {
				off := time.Duration(i) * period
				for _, fr := range frames {
					c := *fr
					c.DTS += off
					c.PTS += off
					c.Ingest = now.Add(c.DTS)
					_ = f.write(&c)
				}
				media += period
			}
			b.StopTimer()
			elapsed := b.Elapsed()
			if media > 0 {
				b.ReportMetric(100*float64(elapsed)/float64(media), "%core/stream")
			}
		})
	}
}
