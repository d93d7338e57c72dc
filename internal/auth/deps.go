package auth

import _ "github.com/golang-jwt/jwt/v5" // tokens (jwt.go)
