package config

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeYAML checks that no config file makes the decoder panic, and
// that a file it accepts decodes the same way twice.
func FuzzDecodeYAML(f *testing.F) {
	f.Add(DefaultYAML())
	f.Add("rtmp:\n  listn: 1\n")
	f.Add("hub: &h\n  queue_size: 64\nrtmp: *h\n")
	f.Add("- a\n- b\n")
	f.Add("hub:\n  publisher_grace: 5\n---\nx: 1\n")
	f.Add("apps:\n  - match: \"live/*\"\n    record: true\n")
	f.Fuzz(func(t *testing.T, body string) {
		a := Default()
		if err := a.decodeYAML(strings.NewReader(body)); err != nil {
			return
		}
		b := Default()
		if err := b.decodeYAML(strings.NewReader(body)); err != nil {
			t.Fatalf("second decode failed: %v", err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("decoding is not deterministic: %+v vs %+v", a, b)
		}
		_ = a.Validate()
	})
}
