package resolver

// Signatures over the expansion of the wildcard at the root ("*.", whose
// RRSIGs have a Labels field of 0) are verified here: miekg/dns builds the
// signed data of a wildcard expansion by writing "*." before the last
// Labels labels of the owner and a final ".", which for Labels 0 gives
// "*.." instead of "*.", a name that cannot be packed, so its
// RRSIG.Verify fails on every such signature (and on the RRset of "*."
// itself, which has one label more than Labels counts). The signed data
// is built here as RFC 4034 §3.1.8.1 and §6.2 define it, and the
// signature checked with the key.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// rootWildcardSigs reports whether sigs hold a signature of the root over
// rrset as an expansion of "*." (Labels 0 over a name below the root).
func rootWildcardSigs(rrset []dns.RR, sigs []*dns.RRSIG, keys *dnssec.ZoneKeys) bool {
	if len(rrset) == 0 || keys == nil || keys.Zone != "." || rrset[0].Header().Name == "." {
		return false
	}
	for _, sig := range sigs {
		if sig.Labels == 0 && sig.SignerName == "." {
			return true
		}
	}
	return false
}

// verifyRootWildcard checks that rrset carries a signature among sigs by
// one of the root's keys, valid at now (or within b.Grace after its
// expiration), over the RRset as expanded from "*.". It counts its work
// in b as dnssec.VerifyRRset does.
func verifyRootWildcard(rrset []dns.RR, sigs []*dns.RRSIG, keys *dnssec.ZoneKeys, now time.Time, b *dnssec.Budget) (*dns.RRSIG, error) {
	h := rrset[0].Header()
	var lastErr error = &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrDNSKEYMissing,
		Detail: fmt.Sprintf("%s %s: no root key for a signature of *.", h.Name, dns.Type(h.Rrtype))}
	for _, sig := range sigs {
		if sig.Labels != 0 || sig.TypeCovered != h.Rrtype || sig.SignerName != "." || !strings.EqualFold(sig.Hdr.Name, h.Name) ||
			!dnssec.AlgorithmSupported(sig.Algorithm) {
			continue
		}
		graced, err := dnssec.SigTimeCheckGrace(sig, now, b.Grace)
		if err != nil {
			lastErr = err
			continue
		}
		data, err := wildcardSignedData(rrset, sig, "*.")
		if err != nil {
			lastErr = &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrBogus, Cause: err,
				Detail: fmt.Sprintf("%s %s: signed data", h.Name, dns.Type(h.Rrtype))}
			continue
		}
		for _, k := range keys.Keys {
			if k.Algorithm != sig.Algorithm || k.KeyTag() != sig.KeyTag {
				continue
			}
			if b.Validations++; b.Validations > b.MaxValidations {
				b.Exceeded = "validations"
				return nil, &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrWorkLimit,
					Detail: "more signature checks than allowed"}
			}
			if err := verifySignedData(k, sig, data); err != nil {
				lastErr = &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrBogus, Cause: err,
					Detail: fmt.Sprintf("%s %s: RRSIG by ./%d over *. does not verify", h.Name, dns.Type(h.Rrtype), sig.KeyTag)}
				continue
			}
			if graced {
				b.Graced++
			}
			return sig, nil
		}
	}
	return nil, lastErr
}

// wildcardSignedData is the data sig signs for rrset expanded from the
// wildcard name wildcard (RFC 4034 §3.1.8.1): the RRSIG RDATA without the
// signature, then each record in canonical form (§6.2: owner the wildcard,
// TTL the original TTL, names in RDATA lower-cased for the types that
// say so) in canonical order, without duplicates (§6.3).
func wildcardSignedData(rrset []dns.RR, sig *dns.RRSIG, wildcard string) ([]byte, error) {
	hdr := *sig
	hdr.Hdr.Name = wildcard
	hdr.SignerName = dns.CanonicalName(sig.SignerName)
	hdr.Signature = ""
	buf := make([]byte, dns.MaxMsgSize)
	n, err := dns.PackRR(&hdr, buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("packing the RRSIG: %w", err)
	}
	start := rdataStart(buf[:n])
	if start < 0 {
		return nil, errors.New("packing the RRSIG: no RDATA")
	}
	out := bytes.Clone(buf[start:n])
	wires := make([][]byte, 0, len(rrset))
	for _, rr := range rrset {
		c := dns.Copy(rr)
		ch := c.Header()
		ch.Name, ch.Ttl = wildcard, sig.OrigTtl
		lowerRdataNames(c)
		n, err := dns.PackRR(c, buf, 0, nil, false)
		if err != nil {
			return nil, fmt.Errorf("packing %s: %w", dns.Type(ch.Rrtype), err)
		}
		wires = append(wires, bytes.Clone(buf[:n]))
	}
	slices.SortFunc(wires, func(a, b []byte) int { return bytes.Compare(a[rdataStart(a):], b[rdataStart(b):]) })
	wires = slices.CompactFunc(wires, bytes.Equal)
	for _, w := range wires {
		out = append(out, w...)
	}
	return out, nil
}

// rdataStart returns where the RDATA of the packed record rr begins
// (after the uncompressed owner name and the ten octets of type, class,
// TTL and length), or -1.
func rdataStart(rr []byte) int {
	i := 0
	for i < len(rr) && rr[i] != 0 {
		i += int(rr[i]) + 1
	}
	if i+11 > len(rr) {
		return -1
	}
	return i + 11
}

// lowerRdataNames lower-cases the domain names in the RDATA of the types
// RFC 4034 §6.2 (as amended by RFC 6840 §5.1) lists.
func lowerRdataNames(rr dns.RR) {
	l := dns.CanonicalName
	switch v := rr.(type) {
	case *dns.NS:
		v.Ns = l(v.Ns)
	case *dns.MD:
		v.Md = l(v.Md)
	case *dns.MF:
		v.Mf = l(v.Mf)
	case *dns.CNAME:
		v.Target = l(v.Target)
	case *dns.SOA:
		v.Ns, v.Mbox = l(v.Ns), l(v.Mbox)
	case *dns.MB:
		v.Mb = l(v.Mb)
	case *dns.MG:
		v.Mg = l(v.Mg)
	case *dns.MR:
		v.Mr = l(v.Mr)
	case *dns.PTR:
		v.Ptr = l(v.Ptr)
	case *dns.MINFO:
		v.Rmail, v.Email = l(v.Rmail), l(v.Email)
	case *dns.MX:
		v.Mx = l(v.Mx)
	case *dns.RP:
		v.Mbox, v.Txt = l(v.Mbox), l(v.Txt)
	case *dns.AFSDB:
		v.Hostname = l(v.Hostname)
	case *dns.RT:
		v.Host = l(v.Host)
	case *dns.PX:
		v.Map822, v.Mapx400 = l(v.Map822), l(v.Mapx400)
	case *dns.NAPTR:
		v.Replacement = l(v.Replacement)
	case *dns.KX:
		v.Exchanger = l(v.Exchanger)
	case *dns.SRV:
		v.Target = l(v.Target)
	case *dns.DNAME:
		v.Target = l(v.Target)
	}
}

// verifySignedData checks the signature of sig over data with key k.
func verifySignedData(k *dns.DNSKEY, sig *dns.RRSIG, data []byte) error {
	pub, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	sg, err := base64.StdEncoding.DecodeString(sig.Signature)
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	switch sig.Algorithm {
	case dns.ED25519:
		if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, data, sg) {
			return errBadSignature
		}
		return nil
	case dns.ECDSAP256SHA256, dns.ECDSAP384SHA384:
		curve, h := elliptic.P256(), crypto.SHA256
		if sig.Algorithm == dns.ECDSAP384SHA384 {
			curve, h = elliptic.P384(), crypto.SHA384
		}
		key, err := ecdsa.ParseUncompressedPublicKey(curve, append([]byte{4}, pub...))
		if err != nil {
			return fmt.Errorf("public key: %w", err)
		}
		if len(sg)%2 != 0 || len(sg) == 0 {
			return errBadSignature
		}
		r, s := new(big.Int).SetBytes(sg[:len(sg)/2]), new(big.Int).SetBytes(sg[len(sg)/2:])
		if !ecdsa.Verify(key, digest(h, data), r, s) {
			return errBadSignature
		}
		return nil
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512:
		h := crypto.SHA1
		switch sig.Algorithm {
		case dns.RSASHA256:
			h = crypto.SHA256
		case dns.RSASHA512:
			h = crypto.SHA512
		}
		key, err := rsaKey(pub)
		if err != nil {
			return err
		}
		if err := rsa.VerifyPKCS1v15(key, h, digest(h, data), sg); err != nil {
			return fmt.Errorf("%w: %w", errBadSignature, err)
		}
		return nil
	}
	return fmt.Errorf("algorithm %d not supported", sig.Algorithm)
}

var errBadSignature = errors.New("bad signature")

func digest(h crypto.Hash, data []byte) []byte {
	switch h {
	case crypto.SHA1:
		d := sha1.Sum(data)
		return d[:]
	case crypto.SHA256:
		d := sha256.Sum256(data)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(data)
		return d[:]
	}
	d := sha512.Sum512(data)
	return d[:]
}

// rsaKey parses an RSA public key in the form of RFC 3110 §2.
func rsaKey(b []byte) (*rsa.PublicKey, error) {
	if len(b) < 3 {
		return nil, errors.New("public key: too short")
	}
	elen, off := int(b[0]), 1
	if elen == 0 {
		elen, off = int(b[1])<<8|int(b[2]), 3
	}
	if elen == 0 || elen > 8 || off+elen >= len(b) {
		return nil, errors.New("public key: bad exponent")
	}
	var e int
	for _, c := range b[off : off+elen] {
		e = e<<8 | int(c)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(b[off+elen:]), E: e}, nil
}
