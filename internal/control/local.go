package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// Result is what a change committed: a zone's serial and size before and
// after.
type Result struct {
	Zone       string `json:"zone"`
	Serial     uint32 `json:"serial"`
	OldSerial  uint32 `json:"old_serial"`
	Bumped     bool   `json:"serial_bumped"`
	Records    int    `json:"records"`
	OldRecords int    `json:"old_records"`
	Created    bool   `json:"created"`
	// Staged: the edit joined the editor's open transaction (Pending
	// changes in all) and the zone has not changed yet.
	Staged  bool `json:"staged,omitempty"`
	Pending int  `json:"pending,omitempty"`
}

func resultOf(res zonestore.PutResult, origin string) Result {
	if res.Zone != nil {
		origin = res.Zone.Origin
	}
	return Result{Zone: origin, Serial: res.Serial, OldSerial: res.OldSerial, Bumped: res.Bumped,
		Records: res.Records, OldRecords: res.OldRecords, Created: res.Created}
}

// ZoneDetail is what `zone show` prints of a zone.
type ZoneDetail struct {
	zonestore.ZoneInfo
	SOA         string   `json:"soa"`
	Nameservers []string `json:"nameservers"`
}

// SOARecord returns the zone's SOA record.
func (d ZoneDetail) SOARecord() (*dns.SOA, error) {
	rr, err := dns.NewRR(d.SOA)
	if err != nil {
		return nil, fmt.Errorf("zone %s: SOA %q: %w", d.Origin, d.SOA, err)
	}
	soa, ok := rr.(*dns.SOA)
	if !ok {
		return nil, fmt.Errorf("zone %s: %q is not an SOA record", d.Origin, d.SOA)
	}
	return soa, nil
}

// NewKey is a key made by GenerateKeys, without its private half.
type NewKey struct {
	ID     string      `json:"id"`
	Role   dnssec.Role `json:"role"`
	DNSKEY string      `json:"dnskey"`
}

// Addition is a record to add to a zone.
type Addition struct {
	RR dns.RR
	// InheritTTL: the record was written without a TTL, and takes the TTL
	// of its RRset when the zone has the RRset, else RR's own.
	InheritTTL bool
}

// Edit is a change of a zone's records: the deletions are applied first,
// then the additions (see zonestore.Change).
type Edit struct {
	Add    []Addition
	Delete []zonestore.Deletion
}

type additionJSON struct {
	RR         string `json:"rr"`
	InheritTTL bool   `json:"inherit_ttl,omitempty"`
}

type deletionJSON struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
	RR   string `json:"rr,omitempty"`
}

type editJSON struct {
	Add    []additionJSON `json:"add"`
	Delete []deletionJSON `json:"delete"`
}

// MarshalJSON writes the edit with its records in master-file form.
func (e Edit) MarshalJSON() ([]byte, error) {
	j := editJSON{Add: []additionJSON{}, Delete: []deletionJSON{}}
	for _, a := range e.Add {
		j.Add = append(j.Add, additionJSON{RR: a.RR.String(), InheritTTL: a.InheritTTL})
	}
	for _, d := range e.Delete {
		dj := deletionJSON{Name: d.Name}
		if d.Type != 0 {
			dj.Type = dns.Type(d.Type).String()
		}
		if d.RR != nil {
			dj.RR = d.RR.String()
		}
		j.Delete = append(j.Delete, dj)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (e *Edit) UnmarshalJSON(b []byte) error {
	var j editJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Edit{}
	for _, a := range j.Add {
		rr, err := parseRR(a.RR)
		if err != nil {
			return err
		}
		e.Add = append(e.Add, Addition{RR: rr, InheritTTL: a.InheritTTL})
	}
	for _, dj := range j.Delete {
		d := zonestore.Deletion{Name: dj.Name}
		if dj.Type != "" {
			t, ok := typeOf(dj.Type)
			if !ok {
				return fmt.Errorf("%w: unknown record type %q", ErrBadRequest, dj.Type)
			}
			d.Type = t
		}
		if dj.RR != "" {
			rr, err := parseRR(dj.RR)
			if err != nil {
				return err
			}
			d.RR = rr
		}
		e.Delete = append(e.Delete, d)
	}
	return nil
}

// parseRR reads one record in master-file form, with an absolute owner.
func parseRR(s string) (dns.RR, error) {
	rr, err := dns.NewRR(s)
	if err != nil {
		return nil, fmt.Errorf("%w: record %q: %w", ErrBadRequest, quoted(s), err)
	}
	if rr == nil {
		return nil, fmt.Errorf("%w: no record in %q", ErrBadRequest, s)
	}
	checked, err := zonestore.CheckRecord(rr)
	if err != nil {
		return nil, fmt.Errorf("%w: record %q: %w", ErrBadRequest, quoted(s), err)
	}
	return checked, nil
}

// quoted cuts s to 64 bytes for an error message.
func quoted(s string) string {
	if len(s) <= 64 {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:64], len(s))
}

// typeOf reads a record type's mnemonic or its TYPEnnn form.
func typeOf(s string) (uint16, bool) {
	s = strings.ToUpper(s)
	if t, ok := dns.StringToType[s]; ok {
		return t, true
	}
	var n uint16
	if _, err := fmt.Sscanf(s, "TYPE%d", &n); err == nil && fmt.Sprintf("TYPE%d", n) == s {
		return n, true
	}
	return 0, false
}

// Local runs the control API's operations directly on an open zone store.
// A server runs them for each request, on a view of its store that
// journals changes under the requester's name; the CLI runs them itself
// when no server holds the database. Both therefore make the same calls
// into zonestore and give the same results and errors.
type Local struct {
	Store *zonestore.Store
	// Parent asks a zone's parent servers for its DS (rollover steps);
	// nil: judged by what they were last seen to publish.
	Parent ParentChecker
}

// Close closes the store.
func (l Local) Close() error { return l.Store.Close() }

// Zones describes every stored zone, in canonical order.
//
// With a pattern (ZonePattern), only the zones whose names match it are
// described.
func (l Local) Zones(_ context.Context, pattern string) ([]zonestore.ZoneInfo, error) {
	match, err := ZonePattern(pattern)
	if err != nil {
		return nil, err
	}
	return l.Store.InfosMatching(match)
}

// ZoneList writes the zones whose names match pattern to w: a table for
// people (WriteZoneTable), or with asJSON the ZoneInfo list, indented.
// The zones are read a batch at a time (zoneSource).
func (l Local) ZoneList(_ context.Context, pattern string, asJSON bool, w io.Writer) error {
	each, err := l.zoneSource(pattern)
	if err != nil {
		return err
	}
	if !asJSON {
		return writeZoneTable(w, each)
	}
	out := bufio.NewWriterSize(w, 64<<10)
	n := 0
	err = each(func(infos []zonestore.ZoneInfo) error {
		for i := range infos {
			// As an Encoder indenting by two spaces writes the list.
			b, err := json.MarshalIndent(&infos[i], "  ", "  ")
			if err != nil {
				return err
			}
			sep := ",\n  "
			if n == 0 {
				sep = "[\n  "
			}
			n++
			out.WriteString(sep)
			out.Write(b)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		out.WriteString("[]\n")
	} else {
		out.WriteString("\n]\n")
	}
	return out.Flush()
}

// zoneBatch is how many zones a zone list reads in one transaction of
// the store: what it holds at a time, whatever the number of zones.
const zoneBatch = 4096

// zoneSource walks the zones whose names match pattern, a batch at a time
// (zonestore.Store.EachInfoBatch); a malformed pattern is an
// ErrBadRequest.
func (l Local) zoneSource(pattern string) (func(fn func([]zonestore.ZoneInfo) error) error, error) {
	match, err := ZonePattern(pattern)
	if err != nil {
		return nil, err
	}
	return func(fn func([]zonestore.ZoneInfo) error) error {
		return l.Store.EachInfoBatch(match, zoneBatch, fn)
	}, nil
}

// WriteZoneTable writes zones as the table sovdns zone list shows: columns
// two spaces apart, each as wide as its widest cell.
func WriteZoneTable(w io.Writer, infos []zonestore.ZoneInfo) error {
	return writeZoneTable(w, func(fn func([]zonestore.ZoneInfo) error) error { return fn(infos) })
}

// writeZoneTable is WriteZoneTable for the zones each walks: it walks them
// twice, for the widths and then for the lines, each written as it is
// made, so that a table of 100,000 zones costs a few buffers, not a cell
// for each field. A zone added between the walks may stand out of line.
func writeZoneTable(w io.Writer, each func(fn func([]zonestore.ZoneInfo) error) error) error {
	head := [3]string{"ZONE", "SERIAL", "RECORDS"}
	width := [3]int{len(head[0]), len(head[1]), len(head[2])}
	num := make([]byte, 0, 256)
	count := 0
	err := each(func(infos []zonestore.ZoneInfo) error {
		count += len(infos)
		for _, i := range infos {
			width[0] = max(width[0], len(i.Origin))
			width[1] = max(width[1], len(strconv.AppendUint(num[:0], uint64(i.Serial), 10)))
			width[2] = max(width[2], len(strconv.AppendInt(num[:0], int64(i.Records), 10)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	cell := func(text []byte, col int) {
		line = append(line, text...)
		for range width[col] - len(text) + 2 {
			line = append(line, ' ')
		}
	}
	for c, h := range head {
		cell([]byte(h), c)
	}
	line = append(line, "UPDATED\n"...)
	if count == 0 {
		line = append(line, "(no zones)\n"...)
	}
	if _, err := out.Write(line); err != nil {
		return err
	}
	if count > 0 {
		err = each(func(infos []zonestore.ZoneInfo) error {
			for _, i := range infos {
				line = line[:0]
				cell(append(num[:0], i.Origin...), 0)
				cell(strconv.AppendUint(num[:0], uint64(i.Serial), 10), 1)
				cell(strconv.AppendInt(num[:0], int64(i.Records), 10), 2)
				line = i.Updated.AppendFormat(line, time.RFC3339)
				line = append(line, '\n')
				if _, err := out.Write(line); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return out.Flush()
}

// ZonePattern is the test of zone names against pattern, a shell pattern
// (path.Match: * any characters of a label, ?, [...]) for fully qualified
// names; nil, every zone, for an empty pattern. A malformed pattern is an
// ErrBadRequest.
func ZonePattern(pattern string) (func(origin string) bool, error) {
	if pattern == "" {
		return nil, nil
	}
	pattern = zone.Fqdn(pattern)
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("%w: zone pattern %q: %w", ErrBadRequest, pattern, err)
	}
	return func(origin string) bool {
		ok, _ := path.Match(pattern, origin)
		return ok
	}, nil
}

// Zone describes one zone with its SOA and name servers.
func (l Local) Zone(_ context.Context, origin string) (ZoneDetail, error) {
	z, err := l.Store.Load(origin)
	if err != nil {
		return ZoneDetail{}, err
	}
	info, err := l.Store.Info(z.Origin)
	if err != nil {
		return ZoneDetail{}, err
	}
	return ZoneDetail{ZoneInfo: info, SOA: z.SOA.String(), Nameservers: nsNames(z)}, nil
}

func nsNames(z *zone.Zone) []string {
	out := []string{}
	if ns := z.Apex.Get(dns.TypeNS); ns != nil {
		for _, rr := range ns.RRs() {
			out = append(out, rr.(*dns.NS).Ns)
		}
	}
	return out
}

// Export writes the zone to w as a canonical master file.
func (l Local) Export(_ context.Context, origin string, w io.Writer) error {
	z, err := l.Store.Load(origin)
	if err != nil {
		return err
	}
	return zonestore.Export(w, z)
}

// Import stores z as the whole contents of its zone; unless replace is
// set, the zone must be new.
func (l Local) Import(_ context.Context, z *zone.Zone, replace bool) (Result, error) {
	res, err := l.Store.Import(z, replace)
	if err != nil {
		return Result{}, err
	}
	return resultOf(res, z.Origin), nil
}

// ImportOutcome is what an import of many zones did with one.
type ImportOutcome struct {
	Zone   string  `json:"zone"`
	Result *Result `json:"result,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// ImportMany imports zones in batched transactions, each zone whole or
// not at all, a refused zone alone (zonestore.ImportMany); progress, if
// not nil, is told how many zones are done after each batch.
func (l Local) ImportMany(_ context.Context, zs []*zone.Zone, replace bool, progress func(int)) ([]ImportOutcome, error) {
	res := l.Store.ImportMany(zs, replace, progress)
	out := make([]ImportOutcome, len(res))
	for i, r := range res {
		out[i].Zone = r.Origin
		if r.Err != nil {
			out[i].Error = r.Err.Error()
			continue
		}
		rr := resultOf(r.Result, r.Origin)
		out[i].Result = &rr
	}
	return out, nil
}

// Forget lets go of the zones at origins held in memory (zonestore.Store.Forget).
func (l Local) Forget(origins ...string) { l.Store.Forget(origins...) }

// zoneText is one zone of an import of many over the API, as a master
// file.
type zoneText struct {
	Zone string `json:"zone"`
	Text string `json:"text"`
}

// Delete removes a zone.
func (l Local) Delete(_ context.Context, origin string) error {
	return l.Store.Delete(origin)
}

// Records returns the zone's records in canonical order, signatures
// included: only those owned by name when it is not empty, and only those
// of type rrtype when it is not 0.
func (l Local) Records(_ context.Context, origin, name string, rrtype uint16) ([]dns.RR, error) {
	z, err := l.Store.Load(origin)
	if err != nil {
		return nil, err
	}
	out := []dns.RR{}
	for _, rr := range z.Records() {
		h := rr.Header()
		if (rrtype != 0 && h.Rrtype != rrtype) || (name != "" && h.Name != name) {
			continue
		}
		out = append(out, rr)
	}
	return out, nil
}

// Edit applies e to the zone as one change (zonestore.Store.UpdateFunc):
// additions that inherit their TTL take it from the zone as it is when
// the change is made.
func (l Local) Edit(_ context.Context, origin string, e Edit) (Result, error) {
	fn := func(z *zone.Zone) (zonestore.Change, error) {
		c := zonestore.Change{Delete: e.Delete, Add: make([]dns.RR, 0, len(e.Add))}
		for _, a := range e.Add {
			rr := a.RR
			if a.InheritTTL {
				if ttl, ok := rrsetTTL(z, rr.Header()); ok && ttl != rr.Header().Ttl {
					rr = dns.Copy(rr)
					rr.Header().Ttl = ttl
				}
			}
			c.Add = append(c.Add, rr)
		}
		return c, nil
	}
	// An editor's edit joins a transaction open on the zone; Stage
	// refuses it if the transaction is another editor's.
	if open, err := l.Store.Txn(origin); err != nil && !errors.Is(err, zonestore.ErrNoZone) {
		return Result{}, err
	} else if open != nil {
		info, err := l.Store.Stage(origin, fn)
		if err != nil {
			return Result{}, err
		}
		return Result{Zone: zone.Fqdn(origin), Serial: info.Serial, OldSerial: info.Serial, Staged: true, Pending: info.Changes}, nil
	}
	res, err := l.Store.UpdateFunc(origin, fn)
	if err != nil {
		return Result{}, err
	}
	return resultOf(res, zone.Fqdn(origin)), nil
}

// TxnDiff is what committing a transaction would change, in
// presentation format.
type TxnDiff struct {
	Removed []string `json:"removed"`
	Added   []string `json:"added"`
}

// Begin opens a transaction on the zone for the caller.
func (l Local) Begin(_ context.Context, origin string) (zonestore.TxnInfo, error) {
	return l.Store.Begin(origin)
}

// Diff shows what committing the caller's transaction would change.
func (l Local) Diff(_ context.Context, origin string) (TxnDiff, error) {
	removed, added, err := l.Store.TxnDiff(origin)
	if err != nil {
		return TxnDiff{}, err
	}
	d := TxnDiff{Removed: []string{}, Added: []string{}}
	for _, rr := range removed {
		d.Removed = append(d.Removed, rr.String())
	}
	for _, rr := range added {
		d.Added = append(d.Added, rr.String())
	}
	return d, nil
}

// Commit applies the caller's transaction.
func (l Local) Commit(_ context.Context, origin string) (Result, error) {
	res, err := l.Store.Commit(origin)
	if err != nil {
		return Result{}, err
	}
	return resultOf(res, zone.Fqdn(origin)), nil
}

// Abort drops the zone's transaction: the caller's, or with force anyone's.
func (l Local) Abort(_ context.Context, origin string, force bool) (zonestore.TxnInfo, error) {
	return l.Store.Abort(origin, force)
}

// rrsetTTL returns the TTL of the zone's RRset of h's name and type.
func rrsetTTL(z *zone.Zone, h *dns.RR_Header) (uint32, bool) {
	k, err := zone.WireKey(h.Name)
	if err != nil {
		return 0, false
	}
	n := z.Lookup(k)
	if n == nil {
		return 0, false
	}
	set := n.Get(h.Rrtype)
	if set == nil {
		return 0, false
	}
	return set.TTL, true
}

// History returns the zone's last limit journal entries (all when limit
// is 0 or less), oldest first.
func (l Local) History(_ context.Context, origin string, limit int) ([]zonestore.Entry, error) {
	return l.Store.History(origin, limit)
}

// DNSSEC reports the zone's signing state.
func (l Local) DNSSEC(_ context.Context, origin string) (zonestore.DNSSECStatus, error) {
	return l.Store.DNSSEC(origin)
}

// DS returns the DS records the parent should hold, with the given digest
// type.
func (l Local) DS(_ context.Context, origin string, digest uint8) ([]*dns.DS, error) {
	return l.Store.DS(origin, digest)
}

// EnableDNSSEC signs the zone under p, or changes a signed zone's policy.
func (l Local) EnableDNSSEC(_ context.Context, origin string, p dnssec.Policy) (Result, error) {
	res, err := l.Store.EnableDNSSEC(origin, p)
	if err != nil {
		return Result{}, err
	}
	return resultOf(res, zone.Fqdn(origin)), nil
}

// parentView asks the zone's parent servers what they publish as its DS,
// when a step of the zone waits for that and the caller does not force it;
// nil otherwise (the store then goes by what was last seen).
func (l Local) parentView(ctx context.Context, origin string, force bool) (*dnssec.ParentView, error) {
	if l.Parent == nil || force {
		return nil, nil
	}
	servers, wait, err := l.Store.ParentServers(origin)
	if err != nil || !wait {
		return nil, err
	}
	v := l.Parent.Check(ctx, zone.Fqdn(origin), servers)
	return &v, nil
}

// DisableDNSSEC turns the zone's signing off (zonestore.DisableDNSSEC):
// first by asking the parent to delete the DS, then, once every parent
// server has (asked now through l.Parent when set), by removing the
// signatures; force removes them at once. Its keys are kept. It says what
// happened in words.
func (l Local) DisableDNSSEC(ctx context.Context, origin string, force bool) (string, Result, error) {
	view, err := l.parentView(ctx, origin, force)
	if err != nil {
		return "", Result{}, err
	}
	msg, res, err := l.Store.DisableDNSSEC(origin, force, view)
	if err != nil {
		return "", Result{}, err
	}
	return msg, resultOf(res, zone.Fqdn(origin)), nil
}

// GenerateKeys makes the keys of a zone not signed yet.
func (l Local) GenerateKeys(_ context.Context, origin string, p dnssec.Policy) ([]NewKey, error) {
	keys, err := l.Store.GenerateKeys(origin, p)
	if err != nil {
		return nil, err
	}
	out := make([]NewKey, len(keys))
	for i, k := range keys {
		out[i] = NewKey{ID: k.ID(), Role: k.Role, DNSKEY: k.DNSKEY.String()}
	}
	return out, nil
}

// Rollover starts a key rollover of role or, with next, takes the next
// step of a KSK rollover; it says what happened in words. The next step
// is judged by what the parent's servers publish now (l.Parent), or when
// l.Parent is nil by what they were last seen to publish; force takes it
// whatever they publish.
func (l Local) Rollover(ctx context.Context, origin string, role dnssec.Role, next, force bool) (string, Result, error) {
	var msg string
	var res zonestore.PutResult
	var err error
	if next {
		view, verr := l.parentView(ctx, origin, force)
		if verr != nil {
			return "", Result{}, verr
		}
		msg, res, err = l.Store.ContinueRollover(origin, role, force, view)
	} else {
		msg, res, err = l.Store.Rollover(origin, role, false)
	}
	if err != nil {
		return "", Result{}, err
	}
	return msg, resultOf(res, zone.Fqdn(origin)), nil
}
