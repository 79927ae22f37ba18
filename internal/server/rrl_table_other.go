//go:build !linux

package server

// bucketTable returns a table of n empty buckets, in the heap.
func bucketTable(n int) ([]rrlBucket, func()) { return make([]rrlBucket, n), nil }
