package auth

import "strings"

// BearerToken returns the token of an "Authorization: Bearer TOKEN" header
// value h (the scheme in any case, spaces around the token trimmed), and
// false when h is not a bearer credential or its token is empty.
func BearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
