// Package audit finds what a national zone needs from outside the national
// namespace: every name whose resolution, or whose mail or service, depends
// on a name server or a name that is not under the national suffixes. A
// name depends on the servers of its own zone, and through a CNAME or
// DNAME on its target; a zone depends on its name servers, and a name
// server's name on the servers of its zone. Deps follows these links from
// each reference in the zone (NS, CNAME, DNAME, MX, SRV, HTTPS and SVCB
// targets) with a resolver, within limits, and reports every reference
// that leads outside, with the chain that does, and every one it could
// not follow ("unresolved") rather than passing over it.
package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// Resolver answers a question by recursion, following CNAMEs, as
// *resolver.Resolver does; the audit asks it only about national names.
type Resolver interface {
	Resolve(ctx context.Context, name string, qtype uint16) resolver.Result
}

// ResolverOf returns r as a Resolver, or a nil Resolver when r is nil
// (recursion off), so that a nil *resolver.Resolver is never called.
func ResolverOf(r *resolver.Resolver) Resolver {
	if r == nil {
		return nil
	}
	return r
}

// Limits of one audit.
const (
	DefaultMaxDepth   = 8
	DefaultMaxLookups = 2000
	DefaultTimeout    = 2 * time.Minute
)

// Options bounds an audit; zero fields take the defaults.
type Options struct {
	// MaxDepth is the longest chain followed from a target: CNAME and
	// DNAME hops and name-server zones. 0: DefaultMaxDepth.
	MaxDepth int
	// MaxLookups bounds the questions asked of the resolver in the whole
	// audit. 0: DefaultMaxLookups.
	MaxLookups int
	// Timeout bounds the whole audit. 0: DefaultTimeout.
	Timeout time.Duration
	// Progress, if not nil, is told how many more of the zone's names
	// (of z.Names()) were audited, as the audit goes: every 256 names,
	// and after each name that needed a lookup.
	Progress func(names int)
}

func (o *Options) defaults() {
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxLookups <= 0 {
		o.MaxLookups = DefaultMaxLookups
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
}

// Status says what a finding is.
type Status string

// The statuses of a finding.
const (
	// StatusForeign: the target, or a name or name server on its chain,
	// is outside the national suffixes.
	StatusForeign Status = "foreign"
	// StatusUnresolved: a lookup on the chain failed, or a limit was
	// reached, so whether the target depends on something foreign is not
	// known.
	StatusUnresolved Status = "unresolved"
)

// The reasons of an unresolved finding that are not a failed lookup.
const (
	ReasonDepth = "chain longer than the audit follows"
	ReasonLoop  = "CNAME or DNAME loop"
)

// Step is one link of a chain: Name leads to Target through a record of
// Type. A CNAME or DNAME step has the name resolved as Name (for a DNAME,
// Target is the synthesized name); an NS step has a zone's apex as Name and
// one of its name servers as Target.
type Step struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Target string `json:"target"`
}

func (s Step) String() string { return s.Name + " " + s.Type + " " + s.Target }

// Finding is one reference of the zone that depends on something foreign,
// or could not be followed.
type Finding struct {
	Name   string `json:"name"`   // owner in the zone
	Type   string `json:"type"`   // NS, CNAME, DNAME, MX, SRV, HTTPS or SVCB
	Target string `json:"target"` // the name the record refers to
	Status Status `json:"status"`
	// Foreign is the first foreign name reached: Target itself, or the
	// last target of Chain.
	Foreign string `json:"foreign,omitempty"`
	// Chain is how Target leads to Foreign, or to the failure; empty when
	// Target itself is foreign.
	Chain []Step `json:"chain"`
	// Reason is why an unresolved finding could not be followed.
	Reason string `json:"reason,omitempty"`
}

// Why says in words why the finding was reported.
func (f Finding) Why() string {
	chain := make([]string, len(f.Chain))
	for i, s := range f.Chain {
		chain[i] = s.String()
	}
	via := strings.Join(chain, " > ")
	switch {
	case f.Status == StatusUnresolved && via != "":
		return "unresolved: " + f.Reason + " (after " + via + ")"
	case f.Status == StatusUnresolved:
		return "unresolved: " + f.Reason
	case via == "":
		return "outside the national suffixes"
	}
	return "via " + via
}

// Report is the result of an audit. Its JSON form is stable: fields are
// only ever added.
type Report struct {
	Zone     string   `json:"zone"`
	Serial   uint32   `json:"serial"`
	Suffixes []string `json:"suffixes"`
	// Resolver: chains were followed with a resolver. Without one they are
	// followed through the zone's own data only, and targets in other
	// national zones are counted in Unchecked.
	Resolver bool `json:"resolver"`
	// Names is the number of owner names examined, References the number
	// of targets, Lookups the questions asked of the resolver.
	Names      int `json:"names"`
	References int `json:"references"`
	Lookups    int `json:"lookups"`
	Unchecked  int `json:"unchecked"`
	// Foreign and Unresolved count the owner names with at least one
	// finding of that status.
	Foreign    int `json:"foreign_names"`
	Unresolved int `json:"unresolved_names"`
	// LimitsReached names the limits that cut chains short: "depth",
	// "lookups", "timeout".
	LimitsReached []string  `json:"limits_reached,omitempty"`
	Findings      []Finding `json:"findings"`
	// Duration is how long the audit took.
	Duration time.Duration `json:"duration_ns"`
}

// Summary is the report in one line.
func (r Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d names, %d references, %d lookups: %d names depend on something foreign, %d unresolved",
		r.Zone, r.Names, r.References, r.Lookups, r.Foreign, r.Unresolved)
	if !r.Resolver {
		fmt.Fprintf(&b, "; no resolver: chains followed through the zone's own data only, %d references to other national zones not followed", r.Unchecked)
	}
	if len(r.LimitsReached) > 0 {
		fmt.Fprintf(&b, "; limits reached: %s", strings.Join(r.LimitsReached, ", "))
	}
	return b.String()
}

// National reports whether name is at or below one of suffixes.
func National(name string, suffixes []string) bool {
	for _, s := range suffixes {
		if dns.IsSubDomain(s, name) {
			return true
		}
	}
	return false
}

// Deps audits z for dependencies outside suffixes (fully qualified; case
// does not matter). res may be nil: then chains are followed through z's
// own data only. A finding is not an error: the error is for an audit that
// could not run (no suffixes, a zone that is not national, ctx ended).
func Deps(ctx context.Context, z *zone.Zone, suffixes []string, res Resolver, opts Options) (Report, error) {
	start := time.Now()
	opts.defaults()
	sfx := make([]string, 0, len(suffixes))
	for _, s := range suffixes {
		if s = strings.TrimSpace(s); s != "" {
			sfx = append(sfx, zone.Fqdn(s))
		}
	}
	slices.Sort(sfx)
	sfx = slices.Compact(sfx)
	if len(sfx) == 0 {
		return Report{}, ErrNoSuffixes
	}
	if !National(z.Origin, sfx) {
		return Report{}, fmt.Errorf("zone %s (suffixes %s): %w", z.Origin, strings.Join(sfx, " "), ErrNotNational)
	}
	actx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	a := &auditor{
		ctx: actx, z: z, suffixes: sfx, res: res, opts: opts,
		answers: map[question]answer{}, names: map[string]verdict{}, zones: map[string]verdict{},
		zoneOf: map[string]zoneRef{}, busyNames: map[string]bool{}, busyZones: map[string]bool{},
		limits: map[string]bool{},
	}
	rep := a.run()
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("audit of %s: %w", z.Origin, err)
	}
	rep.Suffixes = sfx
	rep.Duration = time.Since(start)
	return rep, nil
}

// question is a lookup asked of the resolver.
type question struct {
	name  string
	qtype uint16
}

type answer struct {
	res resolver.Result
	err error
}

// zoneRef is the zone a name is in: its apex and name servers.
type zoneRef struct {
	apex  string
	hosts []string
}

// kind orders verdicts: a worse one wins when they combine.
type kind uint8

const (
	kindOK         kind = iota
	kindUnchecked       // not followed: no resolver
	kindUnresolved      // a lookup failed or a limit was reached
	kindForeign
)

// verdict is what the audit found for a name or a zone.
type verdict struct {
	kind   kind
	chain  []Step
	reason string
	// partial: the verdict was cut short by a loop or the depth limit, so
	// it depends on the path taken to it and is not remembered.
	partial bool
}

// via prefixes the chain of a verdict that is not OK with s.
func (v verdict) via(s Step) verdict {
	if v.kind == kindOK || v.kind == kindUnchecked {
		return v
	}
	v.chain = append([]Step{s}, v.chain...)
	return v
}

// worse combines two verdicts: the worse one, the first on a tie.
func worse(a, b verdict) verdict {
	p := a.partial || b.partial
	if b.kind > a.kind {
		a = b
	}
	a.partial = p
	return a
}

type auditor struct {
	ctx      context.Context
	z        *zone.Zone
	suffixes []string
	res      Resolver
	opts     Options

	lookups   int
	answers   map[question]answer
	names     map[string]verdict // by name, finished verdicts of check
	zones     map[string]verdict // by apex, finished verdicts of checkZone
	zoneOf    map[string]zoneRef // by name
	busyNames map[string]bool
	busyZones map[string]bool
	limits    map[string]bool
}

func (a *auditor) limit(name string) { a.limits[name] = true }

// tooDeep is the verdict on a link past MaxDepth.
func (a *auditor) tooDeep() verdict {
	a.limit("depth")
	return verdict{kind: kindUnresolved, reason: fmt.Sprintf("%s (%d links)", ReasonDepth, a.opts.MaxDepth), partial: true}
}

// run walks the zone and follows each reference.
func (a *auditor) run() Report {
	rep := Report{Zone: a.z.Origin, Serial: a.z.Serial(), Resolver: a.res != nil, Findings: []Finding{}}
	walked, lookups := 0, a.lookups // for Options.Progress
	a.z.Walk(func(n *zone.Node) bool {
		if a.opts.Progress != nil && (walked == 256 || walked > 0 && a.lookups != lookups) {
			a.opts.Progress(walked) // the names before this one
			walked, lookups = 0, a.lookups
		}
		walked++
		if n.Empty() || n.Cut() != nil && !n.IsCut() {
			return true // an empty non-terminal, or glue and occluded data below a cut
		}
		rep.Names++
		refs := a.references(n)
		foreign, unresolved := false, false
		for _, r := range refs {
			rep.References++
			var v verdict
			if r.Type == "NS" {
				v = a.hostVerdict(n.Name, r.Target, 0)
			} else {
				v = a.check(r.Target, 0)
			}
			f := Finding{Name: n.Name, Type: r.Type, Target: r.Target, Chain: v.chain}
			if f.Chain == nil {
				f.Chain = []Step{}
			}
			switch v.kind {
			case kindOK:
				continue
			case kindUnchecked:
				rep.Unchecked++
				continue
			case kindForeign:
				f.Status, f.Foreign = StatusForeign, r.Target
				if len(v.chain) > 0 {
					f.Foreign = v.chain[len(v.chain)-1].Target
				}
				foreign = true
			case kindUnresolved:
				f.Status, f.Reason = StatusUnresolved, v.reason
				unresolved = true
			}
			rep.Findings = append(rep.Findings, f)
		}
		if foreign {
			rep.Foreign++
		}
		if unresolved {
			rep.Unresolved++
		}
		return true
	})
	if a.opts.Progress != nil && walked > 0 {
		a.opts.Progress(walked)
	}
	rep.Lookups = a.lookups
	for _, l := range []string{"depth", "lookups", "timeout"} {
		if a.limits[l] {
			rep.LimitsReached = append(rep.LimitsReached, l)
		}
	}
	return rep
}

// references returns the targets of n's records that its resolution, or
// the use of its mail and services, depends on: each (type, target) once.
// At a delegation point only the NS records count.
func (a *auditor) references(n *zone.Node) []Step {
	var out []Step
	add := func(t uint16, target string) {
		target = zone.Fqdn(target)
		if target == "." {
			return // null MX (RFC 7505), no SRV service, SVCB "." (the owner itself, or no service)
		}
		s := Step{Name: n.Name, Type: dns.TypeToString[t], Target: target}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, set := range n.RRsets {
		if n.IsCut() && set.Type != dns.TypeNS {
			continue
		}
		for _, rr := range set.RRs() {
			switch v := rr.(type) {
			case *dns.NS:
				add(set.Type, v.Ns)
			case *dns.CNAME:
				add(set.Type, v.Target)
			case *dns.DNAME:
				add(set.Type, v.Target)
			case *dns.MX:
				add(set.Type, v.Mx)
			case *dns.SRV:
				add(set.Type, v.Target)
			case *dns.HTTPS:
				add(set.Type, v.Target)
			case *dns.SVCB:
				add(set.Type, v.Target)
			}
		}
	}
	return out
}

// place is where a name is with respect to the audited zone's data.
type place uint8

const (
	outside       place = iota // not at or below the zone's origin
	authoritative              // in the zone's own data
	delegated                  // at or below one of its delegation points
)

// locate returns where name is, and its closest encloser in the zone (for
// a delegated name: the delegation point).
func (a *auditor) locate(name string) (place, *zone.Node, bool) {
	key, err := zone.WireKey(name)
	if err != nil || !zone.IsBelow(key, a.z.Key) {
		return outside, nil, false
	}
	n, exact := a.z.Find(key)
	if n.Cut() != nil {
		return delegated, n.Cut(), false
	}
	return authoritative, n, exact
}

// dataHop returns the CNAME or DNAME step the zone's data gives for name,
// whose closest encloser is n (exact: n is name).
func (a *auditor) dataHop(name string, n *zone.Node, exact bool) (Step, bool) {
	if d := n.DNAME(); d != nil && !(exact && d == n) {
		target := zone.Fqdn(d.Get(dns.TypeDNAME).RRs()[0].(*dns.DNAME).Target)
		prefix := strings.TrimSuffix(name, d.Name)
		if target != "." {
			prefix += target
		}
		if _, ok := dns.IsDomainName(prefix); !ok || len(prefix) > 254 {
			return Step{}, false // too long: YXDOMAIN, resolves to nothing
		}
		return Step{Name: name, Type: "DNAME", Target: prefix}, true
	}
	src := n
	if !exact {
		if src = n.Wildcard(); src == nil {
			return Step{}, false // does not exist
		}
	}
	if set := src.Get(dns.TypeCNAME); set != nil {
		return Step{Name: name, Type: "CNAME", Target: zone.Fqdn(set.RRs()[0].(*dns.CNAME).Target)}, true
	}
	return Step{}, false
}

// nsHosts returns the name servers of the NS RRset at n, sorted.
func nsHosts(n *zone.Node) []string {
	set := n.Get(dns.TypeNS)
	if set == nil {
		return nil
	}
	out := make([]string, 0, len(set.RRs()))
	for _, rr := range set.RRs() {
		out = append(out, zone.Fqdn(rr.(*dns.NS).Ns))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// check finds whether resolving name, depth links into a chain, depends on
// something foreign: name itself, its zone's servers, or what its CNAME or
// DNAME leads to.
func (a *auditor) check(name string, depth int) verdict {
	name = zone.Fqdn(name)
	if !National(name, a.suffixes) {
		return verdict{kind: kindForeign}
	}
	if v, ok := a.names[name]; ok {
		return v
	}
	if depth > a.opts.MaxDepth {
		return a.tooDeep()
	}
	if a.busyNames[name] {
		return verdict{kind: kindUnresolved, reason: ReasonLoop + " at " + name, partial: true}
	}
	a.busyNames[name] = true
	v := a.checkName(name, depth)
	delete(a.busyNames, name)
	if !v.partial {
		a.names[name] = v
	}
	return v
}

func (a *auditor) checkName(name string, depth int) verdict {
	pl, n, exact := a.locate(name)
	var zv verdict // the verdict on the servers of name's zone
	switch pl {
	case authoritative:
		// The zone's own servers are reported as its apex NS findings.
		if hop, ok := a.dataHop(name, n, exact); ok {
			return a.check(hop.Target, depth+1).via(hop)
		}
		return verdict{}
	case delegated:
		zv = a.checkZone(n.Name, nsHosts(n), depth+1)
		if a.res == nil {
			return worse(zv, verdict{kind: kindUnchecked})
		}
	case outside:
		if a.res == nil {
			return verdict{kind: kindUnchecked}
		}
	}
	ans, err := a.lookup(name, dns.TypeCNAME)
	if err != nil {
		// A delegation's foreign servers, known from the zone's data, are
		// worth more than the failure (which they may well explain).
		return worse(zv, verdict{kind: kindUnresolved, reason: err.Error()})
	}
	if pl == outside {
		ref, v := a.zoneOfName(name)
		if v.kind != kindOK {
			zv = v
		} else {
			zv = a.checkZone(ref.apex, ref.hosts, depth+1)
		}
	}
	if hop, ok := answerHop(ans.res, name); ok {
		return worse(zv, a.check(hop.Target, depth+1).via(hop))
	}
	return zv
}

// answerHop returns the CNAME (or DNAME-synthesized CNAME) step of an
// answer for name.
func answerHop(res resolver.Result, name string) (Step, bool) {
	var hop Step
	found := false
	for _, rr := range res.Answer {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, name) {
			hop, found = Step{Name: name, Type: "CNAME", Target: zone.Fqdn(c.Target)}, true
		}
	}
	if !found {
		return Step{}, false
	}
	for _, rr := range res.Answer {
		if d, ok := rr.(*dns.DNAME); ok && dns.IsSubDomain(d.Hdr.Name, name) && !strings.EqualFold(d.Hdr.Name, name) {
			hop.Type = "DNAME"
		}
	}
	return hop, true
}

// hostVerdict finds whether the name server host of the zone at apex
// depends on something foreign: the host itself, or the servers of its
// own zone.
func (a *auditor) hostVerdict(apex, host string, depth int) verdict {
	host = zone.Fqdn(host)
	switch {
	case !National(host, a.suffixes):
		return verdict{kind: kindForeign}
	case dns.IsSubDomain(apex, host):
		return verdict{} // in bailiwick: served by the zone's own servers, with glue
	}
	ref, v := a.zoneOfName(host)
	if v.kind != kindOK {
		return v
	}
	if ref.apex == apex {
		return verdict{}
	}
	return a.checkZone(ref.apex, ref.hosts, depth+1)
}

// checkZone finds whether the zone at apex, served by hosts, depends on
// something foreign through its name servers.
func (a *auditor) checkZone(apex string, hosts []string, depth int) verdict {
	if apex == a.z.Origin {
		return verdict{} // the audited zone: its apex NS are findings of their own
	}
	if v, ok := a.zones[apex]; ok {
		return v
	}
	if depth > a.opts.MaxDepth {
		return a.tooDeep()
	}
	if a.busyZones[apex] {
		// Zones whose servers are in each other: the cycle adds nothing,
		// what leads outside is found where it leaves.
		return verdict{partial: true}
	}
	a.busyZones[apex] = true
	var v verdict
	for _, h := range hosts {
		v = worse(v, a.hostVerdict(apex, h, depth).via(Step{Name: apex, Type: "NS", Target: h}))
	}
	delete(a.busyZones, apex)
	if !v.partial {
		a.zones[apex] = v
	}
	return v
}

// zoneOfName returns the zone name is in: from the audited zone's data,
// or from the resolver. Its apex is the owner of the SOA record of a
// negative answer to name CNAME (one that is not a CNAME answer: an alias
// is no apex, and its parent is asked instead). Asking CNAME, not NS or
// SOA, keeps the resolver from following an alias out of the country.
func (a *auditor) zoneOfName(name string) (zoneRef, verdict) {
	switch pl, n, _ := a.locate(name); pl {
	case authoritative:
		return zoneRef{apex: a.z.Origin, hosts: nsHosts(a.z.Apex)}, verdict{}
	case delegated:
		return zoneRef{apex: n.Name, hosts: nsHosts(n)}, verdict{}
	}
	if a.res == nil {
		return zoneRef{}, verdict{kind: kindUnchecked}
	}
	if ref, ok := a.zoneOf[name]; ok {
		return ref, verdict{}
	}
	apex := ""
	for cand := name; apex == ""; {
		if !National(cand, a.suffixes) {
			return zoneRef{}, verdict{kind: kindUnresolved, reason: "no zone found for " + name + " under the national suffixes"}
		}
		if ref, ok := a.zoneOf[cand]; ok {
			a.zoneOf[name] = ref
			return ref, verdict{}
		}
		ans, err := a.lookup(cand, dns.TypeCNAME)
		if err != nil {
			return zoneRef{}, verdict{kind: kindUnresolved, reason: err.Error()}
		}
		if _, alias := answerHop(ans.res, cand); !alias {
			for _, rr := range ans.res.Ns {
				if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, cand) {
					apex = zone.Fqdn(soa.Hdr.Name)
				}
			}
		}
		if apex == "" {
			i, end := dns.NextLabel(cand, 0)
			if end {
				return zoneRef{}, verdict{kind: kindUnresolved, reason: "no zone found for " + name}
			}
			cand = cand[i:]
		}
	}
	if ref, ok := a.zoneOf[apex]; ok {
		a.zoneOf[name] = ref
		return ref, verdict{}
	}
	ans, err := a.lookup(apex, dns.TypeNS)
	if err != nil {
		return zoneRef{}, verdict{kind: kindUnresolved, reason: err.Error()}
	}
	var hosts []string
	for _, rr := range ans.res.Answer {
		if ns, ok := rr.(*dns.NS); ok && strings.EqualFold(ns.Hdr.Name, apex) {
			hosts = append(hosts, zone.Fqdn(ns.Ns))
		}
	}
	if len(hosts) == 0 {
		return zoneRef{}, verdict{kind: kindUnresolved, reason: "no NS records at " + apex}
	}
	slices.Sort(hosts)
	ref := zoneRef{apex: apex, hosts: slices.Compact(hosts)}
	a.zoneOf[apex], a.zoneOf[name] = ref, ref
	return ref, verdict{}
}

// lookup asks the resolver, once per question. A failure is an error that
// says what failed.
func (a *auditor) lookup(name string, qtype uint16) (answer, error) {
	q := question{name: name, qtype: qtype}
	if ans, ok := a.answers[q]; ok {
		return ans, ans.err
	}
	if a.ctx.Err() != nil {
		a.limit("timeout")
		return answer{}, errTimeLimit
	}
	if a.lookups >= a.opts.MaxLookups {
		a.limit("lookups")
		return answer{}, fmt.Errorf("%w (%d)", errLookupLimit, a.opts.MaxLookups)
	}
	a.lookups++
	res := a.res.Resolve(a.ctx, name, qtype)
	if a.ctx.Err() != nil && (res.Rcode == dns.RcodeServerFailure || res.Err != nil) {
		a.limit("timeout")
		return answer{}, errTimeLimit // not remembered: it was the audit's time, not the name
	}
	ans := answer{res: res, err: failure(name, qtype, res)}
	a.answers[q] = ans
	return ans, ans.err
}

// failure returns the error of a result that does not answer the question,
// or nil. NXDOMAIN and NODATA answer it.
func failure(name string, qtype uint16, res resolver.Result) error {
	what := name + " " + dns.TypeToString[qtype]
	switch {
	case res.Rcode == dns.RcodeServerFailure || res.Err != nil:
		if res.Err != nil {
			return fmt.Errorf("lookup of %s failed: %s: %w", what, dns.RcodeToString[res.Rcode], res.Err)
		}
		return fmt.Errorf("lookup of %s failed: %s", what, dns.RcodeToString[res.Rcode])
	case res.Sec == dnssec.Bogus || res.Sec == dnssec.Indeterminate:
		why := cmp.Or(res.Why, errors.New("DNSSEC validation failed"))
		return fmt.Errorf("lookup of %s failed: %s: %w", what, res.Sec, why)
	case res.Rcode != dns.RcodeSuccess && res.Rcode != dns.RcodeNameError:
		return fmt.Errorf("lookup of %s failed: %s", what, dns.RcodeToString[res.Rcode])
	}
	return nil
}
