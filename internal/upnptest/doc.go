// Package upnptest runs a fake UPnP Internet gateway on loopback for tests:
// an SSDP responder on a UDP socket and an httptest server for the device
// description and SOAP control, the way Tailscale tests its port mapper.
//
// It owns the gateway side of the wire: it answers M-SEARCH, serves an IGD
// description with the WAN services a test asks for, keeps a port-mapping
// table (AddPortMapping, DeletePortMapping, GetExternalIPAddress), records
// every request it receives, and refuses (SOAP faults) or hangs on demand.
//
// It must not: listen anywhere but 127.0.0.1, or reuse the client's code to
// read requests (it parses the SOAP it receives on its own, so a test checks
// what a gateway really sees).
//
// It must be imported only from _test.go files (internal/depcheck enforces
// this). It imports nothing internal and no third-party package.
package upnptest
