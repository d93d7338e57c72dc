// Package amf0 encodes and decodes Action Message Format version 0, the value
// encoding RTMP uses for commands (connect, publish, onStatus…) and metadata
// (onMetaData).
//
// Go values map to AMF0 as follows:
//
//	float64 (and every Go integer/float type on encode)  number
//	bool                                                  boolean
//	string                                                string / long string
//	nil                                                   null
//	Undefined                                             undefined
//	Object (ordered properties)                           object
//	ECMAArray (ordered properties)                        ECMA array
//	StrictArray ([]any on encode too)                     strict array
//	time.Time                                             date (ms precision, UTC)
//	XMLDocument                                           XML document
//	TypedObject                                           typed object
//	Unsupported                                           unsupported
//
// Decoding never panics, bounds nesting to MaxDepth and never allocates more
// than the input could encode.
package amf0

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// AMF0 type markers.
const (
	MarkerNumber      byte = 0x00 // MarkerNumber is an IEEE-754 double.
	MarkerBoolean     byte = 0x01 // MarkerBoolean is one byte, non-zero is true.
	MarkerString      byte = 0x02 // MarkerString is a UTF-8 string with a 16-bit length.
	MarkerObject      byte = 0x03 // MarkerObject is an anonymous object.
	MarkerMovieClip   byte = 0x04 // MarkerMovieClip is reserved and not supported.
	MarkerNull        byte = 0x05 // MarkerNull is null.
	MarkerUndefined   byte = 0x06 // MarkerUndefined is undefined.
	MarkerReference   byte = 0x07 // MarkerReference is a back reference (not supported).
	MarkerECMAArray   byte = 0x08 // MarkerECMAArray is an associative array.
	MarkerObjectEnd   byte = 0x09 // MarkerObjectEnd ends an object or ECMA array.
	MarkerStrictArray byte = 0x0A // MarkerStrictArray is a dense array.
	MarkerDate        byte = 0x0B // MarkerDate is milliseconds since the epoch plus a time zone.
	MarkerLongString  byte = 0x0C // MarkerLongString is a UTF-8 string with a 32-bit length.
	MarkerUnsupported byte = 0x0D // MarkerUnsupported marks an unsupported value.
	MarkerRecordSet   byte = 0x0E // MarkerRecordSet is reserved and not supported.
	MarkerXMLDocument byte = 0x0F // MarkerXMLDocument is an XML document as a long string.
	MarkerTypedObject byte = 0x10 // MarkerTypedObject is an object with a class name.
	MarkerAVMPlus     byte = 0x11 // MarkerAVMPlus switches to AMF3 (not supported).
)

// MaxDepth is the deepest nesting of objects and arrays Decode and Append accept.
const MaxDepth = 32

// Sentinel errors; returned errors wrap one of these.
var (
	// ErrTruncated means the input ended inside a value.
	ErrTruncated = errors.New("amf0: truncated input")
	// ErrDepth means objects or arrays were nested deeper than MaxDepth.
	ErrDepth = errors.New("amf0: nesting too deep")
	// ErrUnsupportedMarker means a type marker this package does not decode.
	ErrUnsupportedMarker = errors.New("amf0: unsupported type marker")
	// ErrUnsupportedType means Append was given a Go type with no AMF0 form.
	ErrUnsupportedType = errors.New("amf0: unsupported Go type")
	// ErrTooLarge means a value is too large to encode.
	ErrTooLarge = errors.New("amf0: value too large")
)

// Undefined is the AMF0 undefined value.
type Undefined struct{}

// Unsupported is the AMF0 unsupported value.
type Unsupported struct{}

// XMLDocument is an AMF0 XML document, kept as its raw text.
type XMLDocument string

// Property is one key/value pair of an Object or ECMAArray.
type Property struct {
	Key   string
	Value any
}

// Object is an AMF0 anonymous object; property order is kept.
type Object []Property

// ECMAArray is an AMF0 ECMA (associative) array; property order is kept.
type ECMAArray []Property

// StrictArray is an AMF0 strict (dense) array.
type StrictArray []any

// TypedObject is an AMF0 typed object: a class name and its properties.
type TypedObject struct {
	Class      string
	Properties Object
}

func getProp(props []Property, key string) (any, bool) {
	for i := range props {
		if props[i].Key == key {
			return props[i].Value, true
		}
	}
	return nil, false
}

func getString(props []Property, key string) (string, bool) {
	v, ok := getProp(props, key)
	if !ok {
		return "", false
	}
	switch s := v.(type) {
	case string:
		return s, true
	case XMLDocument:
		return string(s), true
	}
	return "", false
}

func getNumber(props []Property, key string) (float64, bool) {
	v, ok := getProp(props, key)
	if !ok {
		return 0, false
	}
	f, ok := v.(float64)
	return f, ok
}

func getBool(props []Property, key string) (bool, bool) {
	v, ok := getProp(props, key)
	if !ok {
		return false, false
	}
	b, ok := v.(bool)
	return b, ok
}

// Get returns the value of the first property named key.
func (o Object) Get(key string) (any, bool) { return getProp(o, key) }

// GetString returns the string value of key; ok is false if absent or not a string.
func (o Object) GetString(key string) (string, bool) { return getString(o, key) }

// GetNumber returns the number value of key; ok is false if absent or not a number.
func (o Object) GetNumber(key string) (float64, bool) { return getNumber(o, key) }

// GetBool returns the boolean value of key; ok is false if absent or not a boolean.
func (o Object) GetBool(key string) (bool, bool) { return getBool(o, key) }

// Get returns the value of the first property named key.
func (a ECMAArray) Get(key string) (any, bool) { return getProp(a, key) }

// GetString returns the string value of key; ok is false if absent or not a string.
func (a ECMAArray) GetString(key string) (string, bool) { return getString(a, key) }

// GetNumber returns the number value of key; ok is false if absent or not a number.
func (a ECMAArray) GetNumber(key string) (float64, bool) { return getNumber(a, key) }

// GetBool returns the boolean value of key; ok is false if absent or not a boolean.
func (a ECMAArray) GetBool(key string) (bool, bool) { return getBool(a, key) }

// Properties returns the ordered properties of an Object, ECMAArray or
// TypedObject value (e.g. an onMetaData argument); ok is false for any other value.
func Properties(v any) (props []Property, ok bool) {
	switch o := v.(type) {
	case Object:
		return o, true
	case ECMAArray:
		return o, true
	case TypedObject:
		return o.Properties, true
	}
	return nil, false
}

// ---------------------------------------------------------------------------
// Encoding

// Append appends the AMF0 encoding of each value to dst and returns the
// extended slice. On error dst is returned unchanged in length.
func Append(dst []byte, values ...any) ([]byte, error) {
	start := len(dst)
	var err error
	for _, v := range values {
		dst, err = appendValue(dst, v, 0)
		if err != nil {
			return dst[:start], err
		}
	}
	return dst, nil
}

// AppendNumber appends an AMF0 number.
func AppendNumber(dst []byte, f float64) []byte {
	dst = append(dst, MarkerNumber)
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
}

// AppendBool appends an AMF0 boolean.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, MarkerBoolean, 1)
	}
	return append(dst, MarkerBoolean, 0)
}

// AppendString appends an AMF0 string, or a long string if s exceeds 65535 bytes.
func AppendString(dst []byte, s string) []byte {
	if len(s) <= math.MaxUint16 {
		dst = append(dst, MarkerString)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
		return append(dst, s...)
	}
	dst = append(dst, MarkerLongString)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// AppendNull appends an AMF0 null.
func AppendNull(dst []byte) []byte { return append(dst, MarkerNull) }

func appendKey(dst []byte, key string) ([]byte, error) {
	if len(key) > math.MaxUint16 {
		return dst, fmt.Errorf("%w: property key of %d bytes", ErrTooLarge, len(key))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(key)))
	return append(dst, key...), nil
}

func appendProps(dst []byte, props []Property, depth int) ([]byte, error) {
	var err error
	for i := range props {
		if dst, err = appendKey(dst, props[i].Key); err != nil {
			return dst, err
		}
		if dst, err = appendValue(dst, props[i].Value, depth+1); err != nil {
			return dst, err
		}
	}
	return append(dst, 0, 0, MarkerObjectEnd), nil
}

func appendArray(dst []byte, n int, at func(int) any, depth int) ([]byte, error) {
	if uint64(n) > math.MaxUint32 {
		return dst, fmt.Errorf("%w: strict array of %d elements", ErrTooLarge, n)
	}
	dst = append(dst, MarkerStrictArray)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	var err error
	for i := 0; i < n; i++ {
		if dst, err = appendValue(dst, at(i), depth+1); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return dst, ErrDepth
	}
	switch x := v.(type) {
	case nil:
		return AppendNull(dst), nil
	case float64:
		return AppendNumber(dst, x), nil
	case float32:
		return AppendNumber(dst, float64(x)), nil
	case int:
		return AppendNumber(dst, float64(x)), nil
	case int8:
		return AppendNumber(dst, float64(x)), nil
	case int16:
		return AppendNumber(dst, float64(x)), nil
	case int32:
		return AppendNumber(dst, float64(x)), nil
	case int64:
		return AppendNumber(dst, float64(x)), nil
	case uint:
		return AppendNumber(dst, float64(x)), nil
	case uint8:
		return AppendNumber(dst, float64(x)), nil
	case uint16:
		return AppendNumber(dst, float64(x)), nil
	case uint32:
		return AppendNumber(dst, float64(x)), nil
	case uint64:
		return AppendNumber(dst, float64(x)), nil
	case bool:
		return AppendBool(dst, x), nil
	case string:
		if uint64(len(x)) > math.MaxUint32 {
			return dst, fmt.Errorf("%w: string of %d bytes", ErrTooLarge, len(x))
		}
		return AppendString(dst, x), nil
	case XMLDocument:
		if uint64(len(x)) > math.MaxUint32 {
			return dst, fmt.Errorf("%w: XML document of %d bytes", ErrTooLarge, len(x))
		}
		dst = append(dst, MarkerXMLDocument)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)))
		return append(dst, x...), nil
	case Undefined:
		return append(dst, MarkerUndefined), nil
	case Unsupported:
		return append(dst, MarkerUnsupported), nil
	case Object:
		return appendProps(append(dst, MarkerObject), x, depth)
	case *Object:
		if x == nil {
			return AppendNull(dst), nil
		}
		return appendProps(append(dst, MarkerObject), *x, depth)
	case ECMAArray:
		if uint64(len(x)) > math.MaxUint32 {
			return dst, fmt.Errorf("%w: ECMA array of %d elements", ErrTooLarge, len(x))
		}
		dst = append(dst, MarkerECMAArray)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)))
		return appendProps(dst, x, depth)
	case TypedObject:
		dst = append(dst, MarkerTypedObject)
		var err error
		if dst, err = appendKey(dst, x.Class); err != nil {
			return dst, err
		}
		return appendProps(dst, x.Properties, depth)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, MarkerObject)
		var err error
		for _, k := range keys {
			if dst, err = appendKey(dst, k); err != nil {
				return dst, err
			}
			if dst, err = appendValue(dst, x[k], depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, 0, 0, MarkerObjectEnd), nil
	case StrictArray:
		return appendArray(dst, len(x), func(i int) any { return x[i] }, depth)
	case []any:
		return appendArray(dst, len(x), func(i int) any { return x[i] }, depth)
	case []string:
		return appendArray(dst, len(x), func(i int) any { return x[i] }, depth)
	case []float64:
		return appendArray(dst, len(x), func(i int) any { return x[i] }, depth)
	case time.Time:
		dst = append(dst, MarkerDate)
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(float64(x.UnixMilli())))
		return append(dst, 0, 0), nil // time zone: reserved, always 0
	}
	return dst, fmt.Errorf("%w: %T", ErrUnsupportedType, v)
}

// ---------------------------------------------------------------------------
// Decoding

// Decode decodes every AMF0 value in b, until its end.
func Decode(b []byte) ([]any, error) {
	var out []any
	for len(b) > 0 {
		v, n, err := DecodeValue(b)
		if err != nil {
			return out, err
		}
		out = append(out, v)
		b = b[n:]
	}
	return out, nil
}

// DecodeValue decodes the first AMF0 value in b and returns it with the
// number of bytes it occupied.
func DecodeValue(b []byte) (v any, n int, err error) {
	d := decoder{b: b}
	v, err = d.value(0)
	return v, d.off, err
}

type decoder struct {
	b   []byte
	off int
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) need(n int) error {
	if n < 0 || d.remaining() < n {
		return ErrTruncated
	}
	return nil
}

func (d *decoder) u16() (uint16, error) {
	if err := d.need(2); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v, nil
}

func (d *decoder) u32() (uint32, error) {
	if err := d.need(4); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v, nil
}

func (d *decoder) f64() (float64, error) {
	if err := d.need(8); err != nil {
		return 0, err
	}
	v := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off:]))
	d.off += 8
	return v, nil
}

func (d *decoder) str(n uint64) (string, error) {
	if uint64(d.remaining()) < n {
		return "", ErrTruncated
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s, nil
}

func (d *decoder) shortStr() (string, error) {
	n, err := d.u16()
	if err != nil {
		return "", err
	}
	return d.str(uint64(n))
}

// maxDateMillis is the largest magnitude of an ECMAScript date (±100,000,000 days).
const maxDateMillis = 8.64e15

func (d *decoder) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, ErrDepth
	}
	if err := d.need(1); err != nil {
		return nil, err
	}
	m := d.b[d.off]
	d.off++
	switch m {
	case MarkerNumber:
		return d.f64()
	case MarkerBoolean:
		if err := d.need(1); err != nil {
			return nil, err
		}
		d.off++
		return d.b[d.off-1] != 0, nil
	case MarkerString:
		return d.shortStr()
	case MarkerLongString:
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		return d.str(uint64(n))
	case MarkerXMLDocument:
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		s, err := d.str(uint64(n))
		return XMLDocument(s), err
	case MarkerNull:
		return nil, nil
	case MarkerUndefined:
		return Undefined{}, nil
	case MarkerUnsupported:
		return Unsupported{}, nil
	case MarkerObject:
		props, err := d.props(depth, false)
		return Object(props), err
	case MarkerECMAArray:
		if _, err := d.u32(); err != nil { // count: advisory only, often wrong
			return nil, err
		}
		props, err := d.props(depth, true)
		return ECMAArray(props), err
	case MarkerTypedObject:
		class, err := d.shortStr()
		if err != nil {
			return nil, err
		}
		props, err := d.props(depth, false)
		return TypedObject{Class: class, Properties: props}, err
	case MarkerStrictArray:
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		// Every element takes at least one byte: never allocate beyond that.
		if uint64(n) > uint64(d.remaining()) {
			return nil, ErrTruncated
		}
		arr := make(StrictArray, 0, n)
		for i := uint32(0); i < n; i++ {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	case MarkerDate:
		ms, err := d.f64()
		if err != nil {
			return nil, err
		}
		if _, err := d.u16(); err != nil { // time zone, reserved
			return nil, err
		}
		if math.IsNaN(ms) || ms > maxDateMillis || ms < -maxDateMillis {
			ms = 0
		}
		return time.UnixMilli(int64(ms)).UTC(), nil
	}
	return nil, fmt.Errorf("%w 0x%02x", ErrUnsupportedMarker, m)
}

// props reads properties until the object-end marker. An ECMA array may end
// at the end of input without its end marker (some encoders omit it).
func (d *decoder) props(depth int, lenient bool) ([]Property, error) {
	var props []Property
	for {
		if lenient && d.remaining() == 0 {
			return props, nil
		}
		key, err := d.shortStr()
		if err != nil {
			return nil, err
		}
		if key == "" {
			if err := d.need(1); err != nil {
				if lenient {
					return props, nil
				}
				return nil, err
			}
			if d.b[d.off] == MarkerObjectEnd {
				d.off++
				return props, nil
			}
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		props = append(props, Property{Key: key, Value: v})
	}
}
