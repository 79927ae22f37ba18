// Package resolver is the recursive resolver: Resolver iterates from the
// root hints (iterate.go), asks upstream servers through an Exchanger
// (exchange.go), chooses among them by round-trip time (infra.go) and
// keeps what it learns in a Cache. Serve-stale (stale.go) uses the
// cache's stale window; denials are synthesised from the validated NSEC
// and NSEC3 records the cache holds (aggressive.go, RFC 8198), and answers
// in use are refreshed before they expire (prefetch.go).
//
// Cache is the resolver's cache, modelled on Unbound's services/cache and
// CoreDNS's plugin/cache. It keeps message entries, answers to questions
// (positive, NODATA and NXDOMAIN, keyed as RFC 2308 says, with the negative
// TTL taken from the SOA), and RRset entries used during resolution (name
// servers and their addresses), ranked by trust as Unbound's rrset_trust
// ranks them. It is bounded in bytes, split into shards each with its own
// lock and LRU list, clamps TTLs, keeps expired entries for a stale window
// (RFC 8767), and takes its clock from its configuration.
package resolver
