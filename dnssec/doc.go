// Package dnssec will hold zone signing and validation. It is empty in this
// version: signed zones can be imported and their RRSIGs are served with
// DO, but sovdns does not sign or validate.
package dnssec
