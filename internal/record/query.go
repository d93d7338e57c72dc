package record

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ErrBadTime is returned (wrapped) for a from or to that is not an RFC 3339 time.
var ErrBadTime = errors.New("record: bad time")

// ParseRange reads the optional "from" and "to" query parameters as RFC 3339
// times in UTC (zero when absent) and checks that to is not before from. A
// "+" of a zone offset left unencoded in the URL (so decoded to a space) is
// accepted.
func ParseRange(q url.Values) (from, to time.Time, err error) {
	parse := func(name string) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil && strings.Contains(v, " ") {
			t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s=%q is not an RFC 3339 time like 2026-11-23T18:00:00Z", ErrBadTime, name, v)
		}
		return t.UTC(), nil
	}
	if from, err = parse("from"); err != nil {
		return from, to, err
	}
	if to, err = parse("to"); err != nil {
		return from, to, err
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return from, to, fmt.Errorf("%w: to (%s) is before from (%s)", ErrBadRange, q.Get("to"), q.Get("from"))
	}
	return from, to, nil
}
