module notification-service

go 1.26.8

require (
	github.com/caarlos0/env/v11 v11.4.2
	github.com/coder/websocket v1.8.15
	github.com/google/uuid v1.6.0
	github.com/matryer/is v1.4.1
)
