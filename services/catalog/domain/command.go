package domain

import "fmt"

// errUnknownCommand guards the type switches of the deciders: a command type
// added without a case is a programming error, reported rather than a panic.
func errUnknownCommand(c any) error { return fmt.Errorf("domain: unknown command %T", c) }
