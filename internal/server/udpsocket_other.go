//go:build !linux

package server

import "net"

// udpSys: elsewhere, workers write through the net package.
type udpSys struct{}

// udpOut: no state of its own.
type udpOut struct{}

func newUDPSocket(c *net.UDPConn) *udpSocket { return &udpSocket{c: c} }

// sendTo writes wire to the question's source.
func (j *udpResolution) sendTo(wire []byte) error {
	_, err := j.conn.c.WriteToUDPAddrPort(wire, j.dst)
	return err
}

// queueAnswer: the answer is written by sendTo.
func (j *udpResolution) queueAnswer(wire []byte, bp *[]byte) bool { return false }
