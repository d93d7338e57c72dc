// Package streampath validates the names streams are published and played
// under ("app/stream"), the one rule every protocol applies.
package streampath

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLen bounds a whole stream path.
const MaxLen = 256

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid stream path")

// Join validates app and name and returns "app/name".
func Join(app, name string) (string, error) {
	p := strings.Trim(app, "/") + "/" + strings.Trim(name, "/")
	return p, Validate(p)
}

// Validate checks that p is one or more "/"-separated segments of letters,
// digits, '-', '_', '.' and '~', none of them "." or "..", at most MaxLen long.
func Validate(p string) error {
	if p == "" || len(p) > MaxLen {
		return fmt.Errorf("%w: length %d (1..%d)", ErrInvalid, len(p), MaxLen)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has an empty, '.' or '..' segment", ErrInvalid, p)
		}
		for _, c := range seg {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
			if !ok {
				return fmt.Errorf("%w: %q contains %q", ErrInvalid, p, c)
			}
		}
	}
	return nil
}
