package h265

import "github.com/quasipaa/quasipaa/internal/codec/internal/annexb"

// ForEachNALU calls fn with each NAL unit of a length-prefixed payload
// (4-byte big-endian lengths), in order, until fn returns false. Zero-length
// units are skipped. The slices passed to fn alias payload. It does not
// allocate when fn does not escape.
func ForEachNALU(payload []byte, fn func(nalu []byte) bool) error {
	return mapErr(annexb.ForEachLength(payload, 4, fn))
}

// NextNALU splits the first NAL unit off a length-prefixed payload, for loops
// that do not want a callback:
//
//	for nalu, rest, err := h265.NextNALU(p); nalu != nil; nalu, rest, err = h265.NextNALU(rest) { ... }
//
// It returns nil, nil, nil at the end of the payload.
func NextNALU(payload []byte) (nalu, rest []byte, err error) {
	nalu, rest, err = annexb.Next(payload)
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

// AVCCToAnnexB appends to dst the NAL units of the length-prefixed payload
// src, each preceded by a 4-byte start code, and returns the extended buffer.
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

// IsKeyframe reports whether a length-prefixed payload holds an IRAP picture
// (NAL unit types 16 to 23: BLA, IDR, CRA), the random access points of
// H.265. A malformed payload is not a keyframe.
func IsKeyframe(payload []byte) bool {
	for {
		nalu, rest, err := annexb.Next(payload)
		if err != nil || nalu == nil {
			return false
		}
		if t := NALUType(nalu[0]>>1) & 0x3F; t >= NALUTypeBLAWLP && t <= NALUTypeReservedIRAP23 {
			return true
		}
		payload = rest
	}
}

// ParameterSets returns the VPS, SPS and PPS NAL units sent in-band in a
// length-prefixed payload, or nil when there are none. The returned slices
// alias payload. A malformed payload yields what was found before the error.
func ParameterSets(payload []byte) (vps, sps, pps [][]byte) {
	for {
		nalu, rest, err := annexb.Next(payload)
		if err != nil || nalu == nil {
			return vps, sps, pps
		}
		switch TypeOf(nalu) {
		case NALUTypeVPS:
			vps = append(vps, nalu)
		case NALUTypeSPS:
			sps = append(sps, nalu)
		case NALUTypePPS:
			pps = append(pps, nalu)
		}
		payload = rest
	}
}

// HasParameterSets reports whether a length-prefixed payload carries a VPS,
// an SPS or a PPS.
func HasParameterSets(payload []byte) bool {
	for {
		nalu, rest, err := annexb.Next(payload)
		if err != nil || nalu == nil {
			return false
		}
		if t := TypeOf(nalu); t == NALUTypeVPS || t == NALUTypeSPS || t == NALUTypePPS {
			return true
		}
		payload = rest
	}
}
