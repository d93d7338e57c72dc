package media

import "testing"

func TestPickTracks(t *testing.T) {
	h264 := &Track{Codec: CodecH264}
	opus := &Track{Codec: CodecOpus}
	aac := &Track{Codec: CodecAAC}
	all := func(Codec) bool { return true }
	v, a := PickTracks([]*Track{h264, opus, aac}, all, CodecAAC, CodecMP3)
	if v != 0 || a != 2 {
		t.Fatalf("AAC preferred: got %d %d", v, a)
	}
	v, a = PickTracks([]*Track{h264, opus, aac}, all, CodecOpus)
	if v != 0 || a != 1 {
		t.Fatalf("Opus preferred: got %d %d", v, a)
	}
	v, a = PickTracks([]*Track{opus, h264}, all, CodecAAC)
	if v != 1 || a != 0 {
		t.Fatalf("fallback to any audio: got %d %d", v, a)
	}
	v, a = PickTracks([]*Track{opus, h264}, func(c Codec) bool { return c != CodecOpus }, CodecAAC)
	if v != 1 || a != -1 {
		t.Fatalf("uncarried audio: got %d %d", v, a)
	}
}
