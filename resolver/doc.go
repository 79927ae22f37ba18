// Package resolver holds the recursive resolver: iteration from the root,
// the cache, and serve-stale.
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
