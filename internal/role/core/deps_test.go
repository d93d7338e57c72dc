package core

import _ "github.com/getkin/kin-openapi/openapi3" // OpenAPI validation in tests
