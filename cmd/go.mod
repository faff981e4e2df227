module github.com/custody/custody/cmd

go 1.26.0

replace (
	github.com/custody/custody/pkg => ../pkg
	github.com/custody/custody/proto => ../proto
	github.com/custody/custody/services/catalog => ../services/catalog
	github.com/custody/custody/services/order => ../services/order
)
