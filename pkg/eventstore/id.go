package eventstore

// ValidID reports whether id can be the id part of a stream name
// (StreamName(aggregate, id)): 1 to 128 of [A-Za-z0-9_-]. Services check
// the resource ids of requests against it at their edge.
func ValidID(id string) bool { return validID(id) }
