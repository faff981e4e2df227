package platform

import (
	"context"
	"flag"
)

// A service with settings is two modules of the same name: the one the
// binary runs, whose options start at their defaults and are changed by
// the flags the options declare (WithFlags), and one with options given
// in code, for tests and embedding, which declares no flags
// (WithOptions). Either builds its parts from the options as they are
// when the process starts, after the flags were parsed.

// WithFlags is the module name whose options start as o and are changed
// by the flags (*O).RegisterFlags declares; build makes its parts from
// them.
func WithFlags[O any, P interface {
	*O
	RegisterFlags(fs *flag.FlagSet)
}](name string, o O, build func(ctx context.Context, d Deps, o O) (Parts, error)) Module {
	m := WithOptions(name, &o, func(ctx context.Context, d Deps, o *O) (Parts, error) { return build(ctx, d, *o) })
	m.RegisterFlags = P(&o).RegisterFlags
	return m
}

// WithOptions is the module name with options o given in code; it
// declares no flags.
func WithOptions[O any](name string, o O, build func(ctx context.Context, d Deps, o O) (Parts, error)) Module {
	return Module{Name: name, New: func(ctx context.Context, d Deps) (Parts, error) { return build(ctx, d, o) }}
}
