package amf0

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustAppend(t testing.TB, values ...any) []byte {
	t.Helper()
	b, err := Append(nil, values...)
	require.NoError(t, err)
	return b
}

func TestEncodeKnownBytes(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{1.0, "003ff0000000000000"},
		{3, "004008000000000000"},
		{uint32(3), "004008000000000000"},
		{true, "0101"},
		{false, "0100"},
		{"connect", "020007636f6e6e656374"},
		{nil, "05"},
		{Undefined{}, "06"},
		{Object{{"a", 1.0}}, "03000161003ff0000000000000000009"},
		{ECMAArray{{"a", true}}, "08000000010001610101000009"},
		{StrictArray{"x", nil}, "0a000000020200017805"},
		{[]any{false}, "0a000000010100"},
		{time.UnixMilli(1000), "0b408f4000000000000000"},
		{XMLDocument("<a/>"), "0f000000043c612f3e"},
		{TypedObject{Class: "C", Properties: Object{}}, "10000143000009"},
		{Unsupported{}, "0d"},
		{map[string]any{"b": nil, "a": nil}, "0300016105000162050000" + "09"},
	}
	for _, c := range cases {
		got := mustAppend(t, c.v)
		assert.Equal(t, c.want, hex.EncodeToString(got), "%#v", c.v)
		vals, err := Decode(got)
		require.NoError(t, err)
		require.Len(t, vals, 1)
	}
}

func TestLongString(t *testing.T) {
	s := string(bytes.Repeat([]byte("x"), 70000))
	b := mustAppend(t, s)
	assert.Equal(t, MarkerLongString, b[0])
	v, n, err := DecodeValue(b)
	require.NoError(t, err)
	assert.Equal(t, len(b), n)
	assert.Equal(t, s, v)
}

func TestRoundTripCommand(t *testing.T) {
	cmd := Object{
		{"app", "live"},
		{"flashVer", "FMLE/3.0 (compatible; FMSc/1.0)"},
		{"tcUrl", "rtmp://127.0.0.1:1935/live"},
		{"fpad", false},
		{"capabilities", 15.0},
		{"audioCodecs", 4071.0},
		{"objectEncoding", 0.0},
		{"nested", Object{{"deep", StrictArray{1.0, "two", Undefined{}, nil}}}},
		{"when", time.UnixMilli(1700000000123).UTC()},
	}
	b := mustAppend(t, "connect", 1, cmd)
	vals, err := Decode(b)
	require.NoError(t, err)
	require.Len(t, vals, 3)
	assert.Equal(t, "connect", vals[0])
	assert.Equal(t, 1.0, vals[1])
	obj, ok := vals[2].(Object)
	require.True(t, ok)
	assert.Equal(t, cmd, obj)
	app, ok := obj.GetString("app")
	assert.True(t, ok)
	assert.Equal(t, "live", app)
	n, ok := obj.GetNumber("capabilities")
	assert.True(t, ok)
	assert.Equal(t, 15.0, n)
	fpad, ok := obj.GetBool("fpad")
	assert.True(t, ok)
	assert.False(t, fpad)
	_, ok = obj.GetString("capabilities")
	assert.False(t, ok)
	_, ok = obj.Get("missing")
	assert.False(t, ok)
	props, ok := Properties(vals[2])
	assert.True(t, ok)
	assert.Len(t, props, len(cmd))
}

func TestECMAArrayHelpersAndLenient(t *testing.T) {
	// count says 5 but only one property and no end marker: accepted.
	b := []byte{MarkerECMAArray, 0, 0, 0, 5, 0, 1, 'w', MarkerNumber}
	b = AppendNumber(b, 640)[:len(b)]
	b = append(b, 0x40, 0x84, 0, 0, 0, 0, 0, 0)
	v, n, err := DecodeValue(b)
	require.NoError(t, err)
	assert.Equal(t, len(b), n)
	arr := v.(ECMAArray)
	w, ok := arr.GetNumber("width")
	assert.False(t, ok)
	w, ok = arr.GetNumber("w")
	assert.True(t, ok)
	assert.Equal(t, 640.0, w)
	_, ok = arr.GetBool("w")
	assert.False(t, ok)
	_, ok = arr.GetString("w")
	assert.False(t, ok)
	_, ok = arr.Get("w")
	assert.True(t, ok)
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		err  error
	}{
		{"empty value", nil, ErrTruncated},
		{"short number", []byte{0, 1, 2}, ErrTruncated},
		{"short bool", []byte{1}, ErrTruncated},
		{"short string", []byte{2, 0, 5, 'a'}, ErrTruncated},
		{"huge long string", []byte{0x0c, 0xff, 0xff, 0xff, 0xff, 'a'}, ErrTruncated},
		{"huge strict array", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 5}, ErrTruncated},
		{"object without end", []byte{3, 0, 1, 'a', 5}, ErrTruncated},
		{"reference", []byte{7, 0, 1}, ErrUnsupportedMarker},
		{"movieclip", []byte{4}, ErrUnsupportedMarker},
		{"amf3", []byte{0x11, 1}, ErrUnsupportedMarker},
		{"bad marker", []byte{0xff}, ErrUnsupportedMarker},
		{"short date", []byte{0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrTruncated},
	}
	for _, c := range cases {
		_, _, err := DecodeValue(c.in)
		assert.ErrorIs(t, err, c.err, c.name)
	}
}

func TestDepthLimit(t *testing.T) {
	var b []byte
	for i := 0; i < MaxDepth+5; i++ {
		b = append(b, MarkerStrictArray, 0, 0, 0, 1)
	}
	b = append(b, MarkerNull)
	_, err := Decode(b)
	assert.ErrorIs(t, err, ErrDepth)

	// Within the limit decodes fine.
	var ok []byte
	for i := 0; i < MaxDepth; i++ {
		ok = append(ok, MarkerObject, 0, 1, 'k')
	}
	ok = append(ok, MarkerNull)
	for i := 0; i < MaxDepth; i++ {
		ok = append(ok, 0, 0, MarkerObjectEnd)
	}
	_, err = Decode(ok)
	assert.NoError(t, err)

	// A self-referencing slice fails instead of recursing forever.
	cyc := []any{nil}
	cyc[0] = cyc
	_, err = Append(nil, cyc)
	assert.ErrorIs(t, err, ErrDepth)
}

func TestAppendErrors(t *testing.T) {
	dst := []byte("keep")
	out, err := Append(dst, "ok", struct{}{})
	assert.ErrorIs(t, err, ErrUnsupportedType)
	assert.Equal(t, "keep", string(out))
	_, err = Append(nil, Object{{string(make([]byte, 70000)), nil}})
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.True(t, errors.Is(err, ErrTooLarge))
}

func TestDateEdgeCases(t *testing.T) {
	b := []byte{MarkerDate}
	b = append(b, AppendNumber(nil, math.NaN())[1:]...)
	b = append(b, 0, 0)
	v, _, err := DecodeValue(b)
	require.NoError(t, err)
	assert.Equal(t, time.UnixMilli(0).UTC(), v)
}

func TestNumberTypes(t *testing.T) {
	for _, v := range []any{int8(-2), int16(-2), int32(-2), int64(-2), -2, float32(-2)} {
		vals, err := Decode(mustAppend(t, v))
		require.NoError(t, err)
		assert.Equal(t, -2.0, vals[0])
	}
	for _, v := range []any{uint(2), uint8(2), uint16(2), uint32(2), uint64(2)} {
		vals, err := Decode(mustAppend(t, v))
		require.NoError(t, err)
		assert.Equal(t, 2.0, vals[0])
	}
	vals, err := Decode(mustAppend(t, []string{"a"}, []float64{1}, (*Object)(nil), &Object{}))
	require.NoError(t, err)
	assert.Equal(t, []any{StrictArray{"a"}, StrictArray{1.0}, nil, Object(nil)}, vals)
}

// seeds are used by FuzzDecode and mirrored in testdata/fuzz/FuzzDecode.
func seeds(t testing.TB) [][]byte {
	return [][]byte{
		mustAppend(t, "connect", 1, Object{{"app", "live"}, {"tcUrl", "rtmp://h/live"}, {"objectEncoding", 0}}),
		mustAppend(t, "_result", 1, Object{{"fmsVer", "FMS/3,0,1,123"}}, Object{{"level", "status"}, {"code", "NetConnection.Connect.Success"}}),
		mustAppend(t, "onMetaData", ECMAArray{{"width", 1280}, {"height", 720}, {"encoder", "Lavf"}, {"stereo", true}}),
		mustAppend(t, "publish", 5, nil, "test?k=v", "live"),
		mustAppend(t, StrictArray{1, "a", Undefined{}, time.UnixMilli(5)}, XMLDocument("<x/>"), TypedObject{"C", Object{{"k", Unsupported{}}}}),
		{0x08, 0, 0, 0, 9, 0, 1, 'a', 5},
		{0x0a, 0xff, 0xff, 0xff, 0xff},
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := Append(nil, vals...)
		if err != nil {
			t.Fatalf("re-encode of decoded values failed: %v", err)
		}
		vals2, err := Decode(enc)
		if err != nil {
			t.Fatalf("decode of re-encoded values failed: %v", err)
		}
		enc2, err := Append(nil, vals2...)
		if err != nil {
			t.Fatalf("second re-encode failed: %v", err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip not stable:\n%x\n%x", enc, enc2)
		}
	})
}

func BenchmarkDecodeConnect(b *testing.B) {
	in := seeds(b)[0]
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendOnStatus(b *testing.B) {
	info := Object{{"level", "status"}, {"code", "NetStream.Play.Start"}, {"description", "Start live"}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = Append(buf[:0], "onStatus", 0, nil, info)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
