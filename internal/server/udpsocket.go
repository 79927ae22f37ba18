package server

import "net"

// udpSocket is a listener's UDP socket as workers write to it: the answer
// to a question resolved off the socket's loop is sent by the worker
// (udpResolution.sendTo), with the platform's means (udpSys).
type udpSocket struct {
	c   *net.UDPConn
	sys udpSys
}
