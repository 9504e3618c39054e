// Package netaddr finds the addresses this machine is reached at and answers
// "is this host one of ours" for the media listener.
//
// It owns:
//   - LAN discovery: the interface address the default route uses, found by
//     "dialing" a documentation address over UDP (a connect on a UDP socket
//     picks a route and a source address; no packet is ever sent);
//   - Tailscale discovery: an interface address in 100.64.0.0/10 or
//     fd7a:115c:a1e0::/48, read from the interface list (no shelling out to
//     the tailscale binary, no local API);
//   - pure helpers over given address lists ([PickLAN], [PickTailscale]) so the
//     choice is testable without touching the host's interfaces;
//   - listen and Host helpers ([IsLoopbackListen], [OwnHosts], [HostIn],
//     [NormalizeHost], [BaseURL]);
//   - [Watch], a polling change notifier.
//
// It must not send network traffic, run external programs, or import any other
// internal package. Anyone may import it (engine, upnp, media, origin, daemon).
package netaddr
