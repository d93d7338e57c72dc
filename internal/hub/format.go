package hub

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Format identifies one output wire format (RTMP chunks, an HTTP-FLV chunk, a
// WS-FLV message...). The bytes of a frame in a format are built once, by the
// first reader that needs them, and shared by every reader of that format.
type Format uint8

// MaxFormats is how many formats can be registered in one process.
const MaxFormats = 16

var (
	formatMu    sync.Mutex
	formatNames [MaxFormats]string
	formatCount int
)

// NewFormat registers a wire format under a unique name; call it from package
// initialisation. It panics past MaxFormats, a programming error.
func NewFormat(name string) Format {
	formatMu.Lock()
	defer formatMu.Unlock()
	for i := 0; i < formatCount; i++ {
		if formatNames[i] == name {
			return Format(i)
		}
	}
	if formatCount == MaxFormats {
		panic(fmt.Sprintf("hub: too many formats registering %q", name))
	}
	formatNames[formatCount] = name
	formatCount++
	return Format(formatCount - 1)
}

// String returns the name the format was registered with.
func (f Format) String() string { return formatNames[f] }

// Serializer turns the hub's entries into the wire bytes of one Format. Its
// methods must be pure functions of their arguments: their results are cached
// and shared by every reader of the format.
type Serializer interface {
	// Format is the cache slot the serializer's output is stored under.
	Format() Format
	// AppendPrefix appends what a connection starts with (an FLV file header),
	// given the first track set it will see. It is built per connection.
	AppendPrefix(dst []byte, ts *TrackSet) []byte
	// AppendHeader appends what announces a track set (metadata and sequence
	// headers); it is sent before the first frame and whenever tracks change.
	AppendHeader(dst []byte, ts *TrackSet) []byte
	// AppendFrame appends one frame; it may append nothing to skip the frame
	// (a codec the format cannot carry).
	AppendFrame(dst []byte, e *Entry) []byte
}

// byteCache holds one lazily built byte slice per format.
type byteCache [MaxFormats]atomic.Pointer[[]byte]

// get returns the cached bytes for f, building them with build on a miss.
// Concurrent misses may build twice; one result wins and both are equal.
func (c *byteCache) get(f Format, build func([]byte) []byte) []byte {
	if p := c[f].Load(); p != nil {
		return *p
	}
	b := build(nil)
	if !c[f].CompareAndSwap(nil, &b) {
		return *c[f].Load()
	}
	return b
}
