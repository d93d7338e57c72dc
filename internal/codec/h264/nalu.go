package h264

import "github.com/quasipaa/quasipaa/internal/codec/internal/annexb"

// ForEachNALU calls fn with each NAL unit of an AVCC payload (4-byte
// big-endian lengths), in order, until fn returns false. Zero-length units
// are skipped. The slices passed to fn alias avcc. It does not allocate when
// fn does not escape.
func ForEachNALU(avcc []byte, fn func(nalu []byte) bool) error {
	return mapErr(annexb.ForEachLength(avcc, 4, fn))
}

// NextNALU splits the first NAL unit off an AVCC payload, for loops that do
// not want a callback:
//
//	for nalu, rest, err := h264.NextNALU(p); nalu != nil; nalu, rest, err = h264.NextNALU(rest) { ... }
//
// It returns nil, nil, nil at the end of the payload.
func NextNALU(avcc []byte) (nalu, rest []byte, err error) {
	nalu, rest, err = annexb.Next(avcc)
	return nalu, rest, mapErr(err)
}

// ForEachAnnexBNALU calls fn with each NAL unit of an Annex B byte stream
// (start-code delimited), in order, until fn returns false.
func ForEachAnnexBNALU(annexB []byte, fn func(nalu []byte) bool) error {
	return mapErr(annexb.ForEachAnnexB(annexB, fn))
}

// AnnexBToAVCC appends to dst the NAL units of the Annex B data src, each
// prefixed by its 4-byte length, and returns the extended buffer. It
// allocates only when dst lacks capacity (len(src)+len(src)/2 is always
// enough). On error dst is returned unchanged.
func AnnexBToAVCC(dst, src []byte) ([]byte, error) {
	out, err := annexb.AnnexBToLength(dst, src)
	return out, mapErr(err)
}

// AVCCToAnnexB appends to dst the NAL units of the AVCC payload src, each
// preceded by a 4-byte start code, and returns the extended buffer. The
// output has the same length as the input when src has no empty units.
func AVCCToAnnexB(dst, src []byte) ([]byte, error) {
	out, err := annexb.LengthToAnnexB(dst, src, 4)
	return out, mapErr(err)
}

// ConvertLengthSize appends to dst the NAL units of src, whose lengths are
// lengthSize (1, 2 or 4) bytes long as the track's ConfigRecord.LengthSize
// declares, re-prefixed with 4-byte lengths: the canonical payload form.
func ConvertLengthSize(dst, src []byte, lengthSize int) ([]byte, error) {
	out, err := annexb.ConvertLength(dst, src, lengthSize)
	return out, mapErr(err)
}

// AppendNALU appends one NAL unit prefixed by its 4-byte length to dst.
func AppendNALU(dst, nalu []byte) ([]byte, error) {
	out, err := annexb.AppendLength(dst, nalu)
	if err == annexb.ErrEmptyNALU {
		return out, ErrNoNALUs
	}
	return out, mapErr(err)
}

// LooksLikeAnnexB reports whether a payload starts with a start code rather
// than a length, as some encoders send Annex B inside FLV.
func LooksLikeAnnexB(payload []byte) bool {
	return annexb.LooksLikeAnnexB(payload)
}

// IsKeyframe reports whether an AVCC payload holds an IDR picture, the
// random access point of H.264. A malformed payload is not a keyframe.
func IsKeyframe(avcc []byte) bool {
	for {
		nalu, rest, err := annexb.Next(avcc)
		if err != nil || nalu == nil {
			return false
		}
		if NALUType(nalu[0]&0x1F) == NALUTypeIDR {
			return true
		}
		avcc = rest
	}
}

// ParameterSets returns the SPS and PPS NAL units sent in-band in an AVCC
// payload (some encoders repeat them before every IDR), or nil when there are
// none. The returned slices alias avcc. A malformed payload yields what was
// found before the error.
func ParameterSets(avcc []byte) (sps, pps [][]byte) {
	for {
		nalu, rest, err := annexb.Next(avcc)
		if err != nil || nalu == nil {
			return sps, pps
		}
		switch NALUType(nalu[0] & 0x1F) {
		case NALUTypeSPS:
			sps = append(sps, nalu)
		case NALUTypePPS:
			pps = append(pps, nalu)
		}
		avcc = rest
	}
}

// HasParameterSets reports whether an AVCC payload carries an SPS or a PPS.
func HasParameterSets(avcc []byte) bool {
	for {
		nalu, rest, err := annexb.Next(avcc)
		if err != nil || nalu == nil {
			return false
		}
		if t := NALUType(nalu[0] & 0x1F); t == NALUTypeSPS || t == NALUTypePPS {
			return true
		}
		avcc = rest
	}
}
