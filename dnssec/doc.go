// Package dnssec signs zones and checks signatures.
//
// Signing: a Policy (algorithm, CSK or KSK+ZSK, NSEC or NSEC3, signature
// validity, refresh window and jitter) and a zone's Keys go into Sign,
// which returns the signed zone: DNSKEY, CDS and CDNSKEY at the apex, the
// NSEC or NSEC3 chain, and RRSIGs, keeping the signatures of a previous
// version that are still good. Policy.CheckZone is the expiry guard. Key
// rollovers are state changes of the key set: StartRollover,
// ContinueRollover (operator-confirmed KSK steps) and Advance (timed ZSK
// steps). The package works on zone.Zone values and knows nothing of
// storage; zonestore keeps the keys and runs the signer inside its
// transactions.
//
// Validation primitives for the resolver live in the validate files.
package dnssec
