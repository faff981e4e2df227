package main

import (
	"sort"
	"strings"

	"github.com/custody/custody/cmd/internal/targets"
	"github.com/custody/custody/pkg/platform"
)

func modules() []platform.Module { return targets.All() }

func targetNames() string {
	var names []string
	for _, m := range modules() {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
