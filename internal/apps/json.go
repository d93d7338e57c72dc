package apps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/config"
)

// JSON is an apps entry as the API and the registry document carry it: the
// field names of the YAML file, durations as Go duration strings ("4s",
// "2h0m0s", "90m"; "0" or "0s" for none).
type JSON struct {
	Match            string `json:"match"`
	Record           bool   `json:"record"`
	RecordSegment    string `json:"record_segment"`
	Retention        string `json:"retention"`
	DVRWindow        string `json:"dvr_window"`
	HLSVariant       string `json:"hls_variant"`
	PublishProtocols string `json:"publish_protocols"`
	PlayProtocols    string `json:"play_protocols"`
	Auth             string `json:"auth"`
	MaxPublishers    int    `json:"max_publishers"`
	MaxViewers       int    `json:"max_viewers"`
	MaxBitrate       int    `json:"max_bitrate"`
}

// ToJSON returns the JSON form of a.
func ToJSON(a config.App) JSON {
	return JSON{
		Match:            a.Match,
		Record:           a.Record,
		RecordSegment:    a.RecordSegment.String(),
		Retention:        a.Retention.String(),
		DVRWindow:        a.DVRWindow.String(),
		HLSVariant:       a.HLSVariant,
		PublishProtocols: a.PublishProtocols,
		PlayProtocols:    a.PlayProtocols,
		Auth:             a.Auth,
		MaxPublishers:    a.MaxPublishers,
		MaxViewers:       a.MaxViewers,
		MaxBitrate:       a.MaxBitrate,
	}
}

// App converts j back, naming the field of the first unparsable duration.
func (j JSON) App() (config.App, error) {
	a := config.App{
		Match:            j.Match,
		Record:           j.Record,
		HLSVariant:       j.HLSVariant,
		PublishProtocols: j.PublishProtocols,
		PlayProtocols:    j.PlayProtocols,
		Auth:             j.Auth,
		MaxPublishers:    j.MaxPublishers,
		MaxViewers:       j.MaxViewers,
		MaxBitrate:       j.MaxBitrate,
	}
	for _, d := range []struct {
		name string
		s    string
		dst  *time.Duration
	}{
		{"record_segment", j.RecordSegment, &a.RecordSegment},
		{"retention", j.Retention, &a.Retention},
		{"dvr_window", j.DVRWindow, &a.DVRWindow},
	} {
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return config.App{}, fmt.Errorf("%w: %s: %q is not a duration like \"4s\", \"90m\" or \"2h\"", ErrInvalid, d.name, d.s)
		}
		*d.dst = v
	}
	return a, nil
}

// MaxBody bounds the JSON of one app as the API accepts it.
const MaxBody = 64 << 10

// DecodeBytes parses one app from its JSON: fields left out take the values
// of config.DefaultApp, unknown fields, wrong types and anything after the
// object are errors wrapping ErrInvalid that name the field.
func DecodeBytes(b []byte) (config.App, error) {
	j := ToJSON(config.DefaultApp())
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return config.App{}, fmt.Errorf("%w: %s", ErrInvalid, describeJSONError(err))
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err == nil {
			return config.App{}, fmt.Errorf("%w: unexpected %v after the app object", ErrInvalid, tok)
		}
		return config.App{}, fmt.Errorf("%w: after the app object: %s", ErrInvalid, describeJSONError(err))
	}
	return j.App()
}

// describeJSONError turns encoding/json's errors into messages naming the field.
func describeJSONError(err error) string {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return fmt.Sprintf("expected a JSON object, got %s", typ.Value)
		}
		return fmt.Sprintf("%s: expected %s, got %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.Is(err, io.EOF):
		return "empty body: expected a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	return strings.TrimPrefix(msg, "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int64":
		return "an integer"
	}
	return goKind
}

// document is the registry's apps document.
type document struct {
	Apps []JSON `json:"apps"`
}

func encodeDoc(list []config.App) ([]byte, error) {
	d := document{Apps: make([]JSON, len(list))}
	for i, a := range list {
		d.Apps[i] = ToJSON(a)
	}
	return json.Marshal(d)
}

func decodeDoc(b []byte) ([]config.App, error) {
	// Unknown fields are tolerated: a newer node may have written them.
	var d document
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("apps document: %w", err)
	}
	list := make([]config.App, len(d.Apps))
	for i, j := range d.Apps {
		a, err := j.App()
		if err != nil {
			return nil, fmt.Errorf("apps document, entry %d: %w", i, err)
		}
		list[i] = a
	}
	return list, nil
}
