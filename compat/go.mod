module github.com/distro-registry/distro/compat

go 1.26

require github.com/nacos-group/nacos-sdk-go v1.1.6

require (
	github.com/buger/jsonparser v1.1.1 // indirect
	github.com/go-errors/errors v1.0.1 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	go.uber.org/atomic v1.6.0 // indirect
	go.uber.org/multierr v1.5.0 // indirect
	go.uber.org/zap v1.15.0 // indirect
	golang.org/x/sync v0.0.0-20190423024810-112230192c58 // indirect
	gopkg.in/natefinch/lumberjack.v2 v2.0.0 // indirect
)
