module github.com/custody/custody/services/fulfilment

go 1.26.0

replace (
	github.com/custody/custody/pkg => ../../pkg
	github.com/custody/custody/proto => ../../proto
)
