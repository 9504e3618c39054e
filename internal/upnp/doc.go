// Package upnp maps ports on the local Internet gateway with UPnP IGD, on
// request only (the feature is opt-in).
//
// It owns gateway discovery (SSDP M-SEARCH, then the root device description),
// the choice of WAN connection service (WANIPConnection:2, then
// WANIPConnection:1, then WANPPPConnection:1), adding port mappings with a
// lease, renewing them at half the lease, removing them on shutdown, and asking
// the gateway for its external address.
//
// It must not: ask any third party for the external address, talk to any host
// other than the gateway that answered discovery (description and control URLs
// must live on the host that answered), block without a deadline (every call
// that leaves the process is bounded), or treat a failure as fatal; errors are
// returned and the caller decides how loud to be.
//
// github.com/huin/goupnp is used only inside this package. It may import
// internal/netaddr (it does not need to today). Only internal/daemon imports it.
package upnp
