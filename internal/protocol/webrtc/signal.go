package webrtc

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pion/sdp/v3"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/quasipaa/quasipaa/internal/media"
)

// Content types of WHIP and WHEP.
const (
	ContentTypeSDP     = "application/sdp"
	ContentTypeSDPFrag = "application/trickle-ice-sdpfrag"
)

// MaxSDPSize bounds an offer or an SDP fragment.
const MaxSDPSize = 64 << 10

// ICEServer is a STUN or TURN server offered to clients (in Link headers)
// or used by the server's own PeerConnections.
type ICEServer struct {
	// URLs are stun:, turn: or turns: URIs, e.g. "turn:example.com:3478?transport=udp".
	URLs []string
	// Username and Credential are the TURN credentials (password type).
	Username   string
	Credential string
}

func (s ICEServer) pion() pwebrtc.ICEServer {
	p := pwebrtc.ICEServer{URLs: s.URLs, Username: s.Username}
	if s.Credential != "" {
		p.Credential = s.Credential
		p.CredentialType = pwebrtc.ICECredentialTypePassword
	}
	return p
}

// LinkHeaders renders ICE servers as Link header values (RFC 9725 section
// 4.6): one per URL, with the TURN credentials as attributes.
func LinkHeaders(servers []ICEServer) []string {
	var out []string
	for _, s := range servers {
		for _, u := range s.URLs {
			v := "<" + u + `>; rel="ice-server"`
			if s.Username != "" || s.Credential != "" {
				v += "; username=" + quote(s.Username) + "; credential=" + quote(s.Credential) + `; credential-type="password"`
			}
			out = append(out, v)
		}
	}
	return out
}

// quote renders an RFC 9110 quoted-string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// HTTPError is a failure answered to a WHIP or WHEP client.
type HTTPError struct {
	Status  int
	Code    string
	Message string
}

// Error returns the message.
func (e *HTTPError) Error() string { return e.Message }

// Errorf returns an HTTPError.
func Errorf(status int, code, format string, args ...any) *HTTPError {
	return &HTTPError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WriteError writes the API's error shape: {"error": {"code", "message"}}.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}

// readBody checks a request's content type and size and returns its body.
func readBody(w http.ResponseWriter, r *http.Request, contentType string, limit int64) ([]byte, *HTTPError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, contentType) {
		return nil, Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be %s, not %q", contentType, r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, Errorf(http.StatusRequestEntityTooLarge, "too_large", "body larger than %d bytes", limit)
		}
		return nil, Errorf(http.StatusBadRequest, "bad_request", "reading body: %v", err)
	}
	return body, nil
}

// Offer is a parsed SDP offer.
type Offer struct {
	// SDP is the offer as received.
	SDP string
	// Media are its media sections, in order.
	Media []OfferMedia
	// ICEUfrag and ICEPwd are the offerer's ICE credentials.
	ICEUfrag, ICEPwd string
}

// OfferMedia is one media section of an offer.
type OfferMedia struct {
	// Kind is "audio", "video" or "application".
	Kind string
	// Mid is the section's a=mid.
	Mid string
	// Direction is sendrecv, sendonly, recvonly or inactive, as the offerer sees it.
	Direction string
	// Codecs are the formats offered, by payload type order.
	Codecs []OfferCodec
}

// OfferCodec is one format of a media section.
type OfferCodec struct {
	PayloadType uint8
	// Name is the encoding name ("H264", "opus"...).
	Name      string
	ClockRate uint32
	Fmtp      string
}

// Sends reports whether the offerer sends media of a kind.
func (m OfferMedia) Sends() bool { return m.Direction == "sendrecv" || m.Direction == "sendonly" }

// Receives reports whether the offerer receives media of a kind.
func (m OfferMedia) Receives() bool { return m.Direction == "sendrecv" || m.Direction == "recvonly" }

// ParseOffer parses and checks an SDP offer: it must hold at least one audio
// or video section, ICE credentials and a DTLS fingerprint.
func ParseOffer(b []byte) (*Offer, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(b)); err != nil {
		return nil, fmt.Errorf("malformed SDP: %w", err)
	}
	o := &Offer{SDP: string(b)}
	ufrag, _ := sd.Attribute("ice-ufrag")
	pwd, _ := sd.Attribute("ice-pwd")
	_, fingerprint := sd.Attribute("fingerprint")
	av := 0
	for _, md := range sd.MediaDescriptions {
		m := OfferMedia{Kind: md.MediaName.Media, Direction: "sendrecv"}
		if v, ok := md.Attribute("mid"); ok {
			m.Mid = v
		}
		for _, d := range []string{"sendrecv", "sendonly", "recvonly", "inactive"} {
			if _, ok := md.Attribute(d); ok {
				m.Direction = d
			}
		}
		if md.MediaName.Port.Value == 0 {
			m.Direction = "inactive"
		}
		if u, ok := md.Attribute("ice-ufrag"); ok && ufrag == "" {
			ufrag = u
		}
		if p, ok := md.Attribute("ice-pwd"); ok && pwd == "" {
			pwd = p
		}
		if _, ok := md.Attribute("fingerprint"); ok {
			fingerprint = true
		}
		for _, f := range md.MediaName.Formats {
			pt, err := strconv.ParseUint(f, 10, 8)
			if err != nil {
				continue
			}
			c, err := sd.GetCodecForPayloadType(uint8(pt))
			if err != nil {
				continue
			}
			m.Codecs = append(m.Codecs, OfferCodec{PayloadType: uint8(pt), Name: c.Name, ClockRate: c.ClockRate, Fmtp: c.Fmtp})
		}
		if m.Kind == "audio" || m.Kind == "video" {
			av++
		}
		o.Media = append(o.Media, m)
	}
	switch {
	case av == 0:
		return nil, errors.New("the offer has no audio or video section")
	case ufrag == "" || pwd == "":
		return nil, errors.New("the offer lacks ICE credentials (a=ice-ufrag, a=ice-pwd)")
	case !fingerprint:
		return nil, errors.New("the offer lacks a DTLS fingerprint (a=fingerprint)")
	}
	o.ICEUfrag, o.ICEPwd = ufrag, pwd
	return o, nil
}

// Section returns the first media section of a kind the offerer sends
// (send true) or receives (send false), or nil.
func (o *Offer) Section(kind string, send bool) *OfferMedia {
	for i := range o.Media {
		m := &o.Media[i]
		if m.Kind == kind && (send && m.Sends() || !send && m.Receives()) {
			return m
		}
	}
	return nil
}

// Accepts reports whether a media section offers a codec in a form
// Quasipaa sends (H.264 needs packetization-mode=1).
func (m *OfferMedia) Accepts(c media.Codec) bool {
	mime := MimeOf(c)
	if mime == "" {
		return false
	}
	name := mime[strings.IndexByte(mime, '/')+1:]
	for _, oc := range m.Codecs {
		if !strings.EqualFold(oc.Name, name) {
			continue
		}
		if c == media.CodecH264 && !strings.Contains(oc.Fmtp, "packetization-mode=1") {
			continue
		}
		return true
	}
	return false
}

// CodecNames lists a section's codec names, for error messages.
func (m *OfferMedia) CodecNames() string {
	var names []string
	for _, c := range m.Codecs {
		n := c.Name
		if strings.EqualFold(n, "rtx") || strings.EqualFold(n, "red") || strings.EqualFold(n, "ulpfec") {
			continue
		}
		found := false
		for _, x := range names {
			if strings.EqualFold(x, n) {
				found = true
			}
		}
		if !found {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// SDPFrag is a parsed trickle ICE SDP fragment (RFC 8840).
type SDPFrag struct {
	ICEUfrag, ICEPwd string
	Candidates       []pwebrtc.ICECandidateInit
	EndOfCandidates  bool
}

// ParseSDPFrag parses an application/trickle-ice-sdpfrag body.
func ParseSDPFrag(b []byte) (SDPFrag, error) {
	var (
		f     SDPFrag
		mid   string
		index = -1
	)
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case line == "":
		case strings.HasPrefix(line, "m="):
			index++
			mid = ""
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			f.ICEUfrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=ice-pwd:"):
			f.ICEPwd = strings.TrimPrefix(line, "a=ice-pwd:")
		case strings.HasPrefix(line, "a=candidate:"):
			c := pwebrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a=")}
			if mid != "" {
				m := mid
				c.SDPMid = &m
			}
			i := uint16(max(index, 0))
			c.SDPMLineIndex = &i
			f.Candidates = append(f.Candidates, c)
		case line == "a=end-of-candidates":
			f.EndOfCandidates = true
		case len(line) < 2 || line[1] != '=':
			return f, fmt.Errorf("malformed SDP fragment line %q", line)
		}
	}
	return f, nil
}

// NewSessionID returns a random 128-bit session id in hex.
func NewSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Limiter bounds the concurrent sessions of a node; WHIP and WHEP share one.
// A nil Limiter is unlimited.
type Limiter struct {
	max int64
	n   atomic.Int64
}

// NewLimiter returns a limiter of max sessions (max <= 0: unlimited).
func NewLimiter(max int) *Limiter { return &Limiter{max: int64(max)} }

// Acquire takes a slot, reporting false when none is free.
func (l *Limiter) Acquire() bool {
	if l == nil {
		return true
	}
	if n := l.n.Add(1); l.max > 0 && n > l.max {
		l.n.Add(-1)
		return false
	}
	return true
}

// Release frees a slot taken by Acquire.
func (l *Limiter) Release() {
	if l != nil {
		l.n.Add(-1)
	}
}

// InUse returns the number of slots taken.
func (l *Limiter) InUse() int {
	if l == nil {
		return 0
	}
	return int(l.n.Load())
}
