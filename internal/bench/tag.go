package bench

// This file classifies FLV tag bodies (which are also RTMP audio and video
// message payloads) from their first bytes only: the load generator counts
// frames, it does not decode them.

// kind is what a tag body carries, as far as the bench cares.
type kind uint8

const (
	kindOther       kind = iota // metadata, sequence end, command frame, unknown
	kindVideoConfig             // a video sequence header (decoder configuration)
	kindVideoFrame              // a coded video frame
	kindAudioConfig             // an audio sequence header
	kindAudioFrame              // a coded audio frame
)

// Enhanced RTMP packet types used below.
const (
	exSequenceStart        = 0
	exCodedFrames          = 1
	exCodedFramesX         = 3 // video only
	exMPEG2TSSequenceStart = 5 // video only
	exAudioMultitrack      = 5 // audio only
	exVideoMultitrack      = 6 // video only
	exModEx                = 7
)

// skipModEx skips the ModEx prefixes that start at body[pos] (just after a
// byte whose packet type was ModEx) and returns the real packet type and the
// position after the byte that carried it; ok is false on a truncated body.
func skipModEx(body []byte, pos int) (pktType uint8, next int, ok bool) {
	pktType = exModEx
	for pktType == exModEx {
		if pos >= len(body) {
			return 0, 0, false
		}
		size := int(body[pos]) + 1
		pos++
		if size == 256 {
			if pos+2 > len(body) {
				return 0, 0, false
			}
			size = (int(body[pos])<<8 | int(body[pos+1])) + 1
			pos += 2
		}
		pos += size
		if pos >= len(body) {
			return 0, 0, false
		}
		pktType = body[pos] & 0x0f
		pos++
	}
	return pktType, pos, true
}

// videoKind classifies a video tag body: legacy (FrameType/CodecID, and for
// AVC and the HEVC extension the AVCPacketType) or Enhanced RTMP (the
// IsExHeader bit 0x80, then the packet type, behind ModEx and multitrack
// headers if any).
func videoKind(body []byte) kind {
	if len(body) == 0 {
		return kindOther
	}
	b := body[0]
	if b&0x80 != 0 {
		if (b>>4)&7 == 5 { // command frame
			return kindOther
		}
		pkt, pos := b&0x0f, 1
		if pkt == exModEx {
			var ok bool
			if pkt, pos, ok = skipModEx(body, pos); !ok {
				return kindOther
			}
		}
		if pkt == exVideoMultitrack {
			if pos >= len(body) {
				return kindOther
			}
			pkt = body[pos] & 0x0f
		}
		switch pkt {
		case exSequenceStart, exMPEG2TSSequenceStart:
			return kindVideoConfig
		case exCodedFrames, exCodedFramesX:
			return kindVideoFrame
		}
		return kindOther
	}
	if b>>4 == 5 { // video info / command frame
		return kindOther
	}
	switch b & 0x0f {
	case 7, 12: // AVC, HEVC (legacy extension): AVCPacketType follows
		if len(body) < 2 {
			return kindOther
		}
		switch body[1] {
		case 0:
			return kindVideoConfig
		case 1:
			return kindVideoFrame
		}
		return kindOther
	}
	return kindVideoFrame // older codecs: every tag is a frame
}

// audioKind classifies an audio tag body: AAC by its AACPacketType,
// Enhanced RTMP audio (SoundFormat 9) by its packet type, any other legacy
// format as a frame.
func audioKind(body []byte) kind {
	if len(body) == 0 {
		return kindOther
	}
	switch body[0] >> 4 {
	case 10: // AAC
		if len(body) < 2 {
			return kindOther
		}
		if body[1] == 0 {
			return kindAudioConfig
		}
		return kindAudioFrame
	case 9: // ExHeader
		pkt, pos := body[0]&0x0f, 1
		if pkt == exModEx {
			var ok bool
			if pkt, pos, ok = skipModEx(body, pos); !ok {
				return kindOther
			}
		}
		if pkt == exAudioMultitrack {
			if pos >= len(body) {
				return kindOther
			}
			pkt = body[pos] & 0x0f
		}
		switch pkt {
		case exSequenceStart:
			return kindAudioConfig
		case exCodedFrames:
			return kindAudioFrame
		}
		return kindOther
	}
	return kindAudioFrame
}
