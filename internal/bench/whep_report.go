package bench

import (
	"fmt"
	"strings"
	"time"
)

// WebRTCStats are the figures of a set of WHEP players.
type WebRTCStats struct {
	Players int `json:"players"` // Players is the number of WHEP players.

	// SignalMs is the POST of the offer to the answer received (201).
	SignalMs Percentiles `json:"signal_ms"`

	// LatencyMs is, for each complete video frame received that the
	// bench's publisher sent after the player connected, its receive time
	// (of its last packet) minus the time the publisher sent it; measured
	// only with the bench's own publisher (-publish).
	LatencyMs Percentiles `json:"latency_ms"`
	// LatencyFrames counts the frames LatencyMs is measured on.
	LatencyFrames uint64 `json:"latency_frames"`
	// BacklogLatencyMs is the same for the frames sent before the player
	// connected: the server's cached keyframe and what followed it, which
	// a player gets at once when it starts.
	BacklogLatencyMs Percentiles `json:"backlog_latency_ms"`
	// BacklogFrames counts the frames BacklogLatencyMs is measured on.
	BacklogFrames uint64 `json:"backlog_frames"`
	// FirstFrameLatencyMs is the same for each player's first keyframe.
	FirstFrameLatencyMs Percentiles `json:"first_frame_latency_ms"`
	// KeyframesBySize counts players whose first keyframe was recognised in
	// the publisher's log by its slice bytes; KeyframesByTime those for
	// which only the send time could tell (the latest keyframe sent).
	KeyframesBySize int `json:"keyframes_by_size"`
	KeyframesByTime int `json:"keyframes_by_time"` // KeyframesByTime: see KeyframesBySize.
	// UnmatchedFrames counts frames whose PTS the publisher's log did not
	// have (older than its memory, or a wrong mapping).
	UnmatchedFrames uint64 `json:"unmatched_frames"`

	VideoPackets     uint64       `json:"video_packets"`           // VideoPackets counts video RTP packets received (duplicates included).
	VideoLost        uint64       `json:"video_lost"`              // VideoLost is the video sequence numbers never received.
	AudioPackets     uint64       `json:"audio_packets"`           // AudioPackets counts audio RTP packets received.
	AudioLost        uint64       `json:"audio_lost"`              // AudioLost is the audio sequence numbers never received.
	LossPercent      float64      `json:"loss_percent"`            // LossPercent is the lost packets over those expected, audio and video, in %.
	LatePackets      uint64       `json:"late_packets"`            // LatePackets counts packets received after a higher sequence number (reordered or retransmitted).
	Duplicates       uint64       `json:"duplicate_packets"`       // Duplicates counts packets received twice.
	IncompleteFrames uint64       `json:"incomplete_frames"`       // IncompleteFrames counts video frames missing a packet when they ended.
	Deleted          int          `json:"deleted"`                 // Deleted counts sessions ended with a successful DELETE.
	DeleteErrors     []ErrorCount `json:"delete_errors,omitempty"` // DeleteErrors groups the DELETEs that failed.
}

// aggregateWebRTC sums the WHEP figures of some players; nil when none
// played WHEP.
func aggregateWebRTC(rs []PlayerResult) *WebRTCStats {
	s := &WebRTCStats{}
	var signal, latency, backlog, first []time.Duration
	var delErrs []error
	var expected, lost uint64
	for _, r := range rs {
		if r.Protocol != WHEP {
			continue
		}
		s.Players++
		st := r.rtc
		if st == nil {
			continue
		}
		if st.signaled {
			signal = append(signal, st.signal)
		}
		v, a := &st.video, &st.audio
		latency = append(latency, v.latencies...)
		backlog = append(backlog, v.backlog...)
		if v.mapped {
			first = append(first, v.first)
			if v.bySize {
				s.KeyframesBySize++
			} else {
				s.KeyframesByTime++
			}
		}
		s.UnmatchedFrames += v.unmatched
		s.VideoPackets += v.packets
		s.VideoLost += v.seq.lost()
		s.AudioPackets += a.packets
		s.AudioLost += a.seq.lost()
		expected += v.seq.expected() + a.seq.expected()
		lost += v.seq.lost() + a.seq.lost()
		s.LatePackets += v.seq.late + a.seq.late
		s.Duplicates += v.seq.dups + a.seq.dups
		s.IncompleteFrames += v.incomplete
		if st.deleted {
			s.Deleted++
		} else if st.deleteErr != nil {
			delErrs = append(delErrs, st.deleteErr)
		}
	}
	if s.Players == 0 {
		return nil
	}
	s.SignalMs = percentiles(signal)
	s.LatencyFrames = uint64(len(latency))
	s.LatencyMs = percentiles(latency)
	s.BacklogFrames = uint64(len(backlog))
	s.BacklogLatencyMs = percentiles(backlog)
	s.FirstFrameLatencyMs = percentiles(first)
	if expected > 0 {
		s.LossPercent = 100 * float64(lost) / float64(expected)
	}
	s.DeleteErrors = groupErrors(delErrs)
	return s
}

// writeWebRTC writes the WHEP figures for people.
func writeWebRTC(b *strings.Builder, s *WebRTCStats, in string) {
	fmt.Fprintf(b, "%swhep        signal %s  (POST of the offer to the answer)\n", in, s.SignalMs)
	if s.LatencyFrames+s.BacklogFrames > 0 {
		fmt.Fprintf(b, "%slatency     %s  (publisher send -> last packet of each video frame sent once the player was connected, %d frames)\n", in, s.LatencyMs, s.LatencyFrames)
		fmt.Fprintf(b, "%s  backlog   %s  (frames sent before, from the server's cached keyframe on, %d frames)\n", in, s.BacklogLatencyMs, s.BacklogFrames)
		fmt.Fprintf(b, "%s  first     %s  (each player's first keyframe; %d recognised by size, %d by time only)\n",
			in, s.FirstFrameLatencyMs, s.KeyframesBySize, s.KeyframesByTime)
		if s.UnmatchedFrames > 0 {
			fmt.Fprintf(b, "%s  unmatched %d frames not in the publisher's log\n", in, s.UnmatchedFrames)
		}
	} else {
		fmt.Fprintf(b, "%slatency     - (measured with the bench's own publisher, -publish)\n", in)
	}
	fmt.Fprintf(b, "%srtp         video %d packets, %d lost; audio %d packets, %d lost (%.3f%% lost); %d late, %d duplicates; %d incomplete frames\n",
		in, s.VideoPackets, s.VideoLost, s.AudioPackets, s.AudioLost, s.LossPercent, s.LatePackets, s.Duplicates, s.IncompleteFrames)
	fmt.Fprintf(b, "%ssessions    %d deleted", in, s.Deleted)
	if len(s.DeleteErrors) == 0 {
		b.WriteString("\n")
		return
	}
	b.WriteString(", DELETE failed:\n")
	for _, e := range s.DeleteErrors {
		fmt.Fprintf(b, "%s  %6d × %s\n", in, e.Count, e.Error)
	}
}
