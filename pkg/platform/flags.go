package platform

import (
	"flag"
	"fmt"
	"strings"
)

// EnvName is the environment variable that may set flag name:
// "fulfilment-handling-time" ← CUSTODY_FULFILMENT_HANDLING_TIME.
func EnvName(name string) string {
	return "CUSTODY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// SetFromEnv sets every flag of fs whose environment variable (EnvName) is
// present, as lookup (os.LookupEnv) finds it. Call it after every flag is
// registered and before fs.Parse, so that flags given on the command line
// win. A bad value is reported with the variable's name.
func SetFromEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(f.Name)
		v, ok := lookup(env)
		if !ok || err != nil {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %w", env, v, e)
		}
	})
	return err
}

// RegisterFlags declares the flags of every module that has settings.
func RegisterFlags(fs *flag.FlagSet, modules []Module) {
	for _, m := range modules {
		if m.RegisterFlags != nil {
			m.RegisterFlags(fs)
		}
	}
}
