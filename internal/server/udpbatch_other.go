//go:build !linux

package server

import (
	"context"
	"net"
)

func (s *Server) serveUDP(ctx context.Context, c *net.UDPConn) { s.serveUDPSimple(ctx, c) }
