package platformtest

import (
	"flag"
	"io"

	"github.com/custody/custody/pkg/platform"
)

// ParseFlags declares flags with register (a module's or its options'
// RegisterFlags) on a fresh flag set, sets them from env as the binary
// sets them from the environment (platform.SetFromEnv), then parses args,
// so that flags given win. It returns the flag set, to look at its
// defaults.
func ParseFlags(register func(*flag.FlagSet), env map[string]string, args ...string) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet("custody run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	register(fs)
	if err := platform.SetFromEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		return fs, err
	}
	return fs, fs.Parse(args)
}

// ParseOptions is ParseFlags on a copy of o, declared by its
// RegisterFlags: the options a process started with env and args runs
// with.
func ParseOptions[O any, P interface {
	*O
	RegisterFlags(fs *flag.FlagSet)
}](o O, env map[string]string, args ...string) (O, error) {
	_, err := ParseFlags(P(&o).RegisterFlags, env, args...)
	return o, err
}

// FlagNames are the names of the flags register declares, sorted.
func FlagNames(register func(*flag.FlagSet)) []string {
	fs := flag.NewFlagSet("custody run", flag.ContinueOnError)
	register(fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}
