package turn

import (
	"net"
	"net/netip"
)

// blockedPeerPrefixes are the non-global ranges refused as TURN peers unless
// Options.AllowPrivatePeers is set, besides what netip.Addr's Is* methods cover.
var blockedPeerPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network" (RFC 1122), incl. 0.0.0.0
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments (RFC 6890)
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking (RFC 2544)
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, incl. 255.255.255.255
	netip.MustParsePrefix("::/96"),          // ::, ::1 and deprecated IPv4-compatible
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64 (RFC 8215)
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
	netip.MustParsePrefix("100::/64"),       // discard-only (RFC 6666)
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64 (RFC 6052)
	sixToFour   = netip.MustParsePrefix("2002::/16")    // 6to4 (RFC 3056)
)

// IsPrivatePeer reports whether ip is refused as a TURN peer when private peers
// are not allowed: loopback, RFC 1918 and unique-local fc00::/7, carrier-grade
// NAT 100.64.0.0/10, link-local, unspecified, multicast and broadcast, other
// reserved ranges, and IPv6 forms embedding such an IPv4 address
// (IPv4-mapped, NAT64 64:ff9b::/96, 6to4). An invalid IP counts as private.
func IsPrivatePeer(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return true
	}
	return isPrivateAddr(a.Unmap())
}

func isPrivateAddr(a netip.Addr) bool {
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() ||
		a.IsMulticast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range blockedPeerPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64Prefix.Contains(a):
			return isPrivateAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a):
			return isPrivateAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return false
}
