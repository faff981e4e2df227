package main

import (
	"sort"
	"strings"

	"github.com/custody/custody/pkg/platform"
)

// modules lists every service the binary can run, in start order. Each
// service module (services/<name>) adds itself here.
func modules() []platform.Module {
	return []platform.Module{}
}

func targetNames() string {
	var names []string
	for _, m := range modules() {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "no service modules yet"
	}
	return strings.Join(names, ", ")
}
