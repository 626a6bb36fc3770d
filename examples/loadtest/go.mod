module ginws.dev/examples/loadtest

go 1.25.0

require (
	github.com/gorilla/websocket v1.5.3
	github.com/olahol/melody v1.1.4
)

require go.uber.org/goleak v1.3.0
