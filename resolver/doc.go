// Package resolver will hold the recursive resolver: iteration from the
// root, the cache, and serve-stale. It is empty in this version; queries
// for names outside the zones held are refused.
package resolver
