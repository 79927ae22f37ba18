package server

import "net/netip"

type netipAddrPort = netip.AddrPort

var loopback0 = netip.MustParseAddrPort("127.0.0.1:0")
