// Command firstanswer polls one server on a loopback address with a query
// every 2 ms until it answers as wanted, and prints the milliseconds from a
// start time to that answer.
//
// Without -serial-not it waits for an authoritative NOERROR answer with
// records in it; with it, for an answer whose SOA serial differs. Each
// query waits 20 ms for its answer at most, so that a lost datagram costs
// 20 ms rather than a client's whole timeout. Bounded by -max in time and
// by -max/2ms in count.
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/miekg/dns"
)

func main() {
	server := flag.String("server", "", "server address:port (loopback)")
	name := flag.String("name", "", "name asked")
	qtype := flag.String("type", "SOA", "type asked")
	startMS := flag.Int64("start-ms", 0, "start time, in ms since the epoch (default: now)")
	max := flag.Duration("max", 30*time.Second, "give up after this long")
	serialNot := flag.Int64("serial-not", -1, "wait for a SOA serial other than this one")
	flag.Parse()
	ap, err := netip.ParseAddrPort(*server)
	t, ok := dns.StringToType[*qtype]
	if err != nil || !ap.Addr().IsLoopback() || *name == "" || !ok {
		fmt.Fprintln(os.Stderr, "firstanswer: -server must be a loopback address:port, -name a name, -type a type")
		os.Exit(2)
	}
	start := time.Now()
	if *startMS > 0 {
		start = time.UnixMilli(*startMS)
	}
	c := &dns.Client{Net: "udp", Timeout: 20 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(*name), t)
	deadline := time.Now().Add(*max)
	for range int(*max/(2*time.Millisecond)) + 1 {
		if time.Now().After(deadline) {
			break
		}
		r, _, err := c.Exchange(q, ap.String())
		at := time.Now()
		if err == nil && wanted(r, *serialNot) {
			fmt.Println(at.Sub(start).Milliseconds())
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "firstanswer: %s %s from %s: not within %s\n", *name, *qtype, ap, *max)
	os.Exit(1)
}

// wanted reports whether r is the answer waited for.
func wanted(r *dns.Msg, serialNot int64) bool {
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return false
	}
	if serialNot < 0 {
		return r.Authoritative
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return int64(soa.Serial) != serialNot
		}
	}
	return false
}
