package middleware

import (
	"log/slog"

	"ginws.dev/ginws"
)

// Option adjusts a middleware that takes no Config struct (Sessions, LoadUser). The ones with a
// Config struct take the same settings as fields (JWTConfig.Logger).
type Option func(*options)

type options struct {
	logger *slog.Logger
}

// WithLogger sends the middleware's log lines to l (give it the logger the ginws.Server uses).
// Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return o
}

// configError panics with a *ginws.ConfigError: middleware factories refuse invalid configuration
// when the route is built, as every ginws constructor does.
func configError(field string, value any, rule string) {
	panic(&ginws.ConfigError{Field: "middleware." + field, Value: value, Rule: rule})
}
