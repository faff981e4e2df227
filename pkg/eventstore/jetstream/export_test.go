package jetstream

// SetRefChunk makes the index seal message refs into chunks of n (long
// streams in short tests) until the returned function is called.
func SetRefChunk(n int) (restore func()) {
	old := refChunk
	refChunk = n
	return func() { refChunk = old }
}
