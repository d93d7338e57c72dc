module github.com/quasipaa/quasipaa

go 1.26.0

require (
	github.com/bluenviron/mediacommon/v2 v2.9.5
	github.com/gorilla/websocket v1.5.3
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
	go.yaml.in/yaml/v3 v3.0.6
)
