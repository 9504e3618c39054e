// Package clienttest runs real third-party BitTorrent clients — qbittorrent-nox
// (libtorrent-rasterbar), transmission-daemon and aria2c — and a local opentracker for tests
// and benchmarks, each with its default transports (uTP on where the client has it) and with
// DHT, local peer discovery, peer exchange and port mapping off.
//
// Those clients contact public hosts when they start, so they run only inside a network
// namespace that has nothing but the loopback interface: [Isolate] re-executes the calling
// test in such a namespace (made with CLONE_NEWNET, which needs root) and every Start
// function refuses to run outside one. A test that cannot get a namespace, or a client, is
// skipped with the reason; TORRENTCLAW_E2E=required turns such a skip into a failure.
// Namespaces are Linux's: on other systems the package builds and such tests skip.
//
// It imports nothing internal, only the standard library, and must be imported only from
// _test.go files.
package clienttest
