package upnp

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

var ssdpCases = []struct {
	name    string
	in      string
	want    string // location; "" means an error
	wantErr string
}{
	{
		name: "miniupnpd",
		in: "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
			"USN: uuid:3d3cec3a::urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\nEXT:\r\n" +
			"SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: http://10.200.0.1:5000/rootDesc.xml\r\n" +
			"OPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\n\r\n",
		want: "http://10.200.0.1:5000/rootDesc.xml",
	},
	{name: "lowercase header", in: "HTTP/1.1 200 OK\r\nlocation: http://192.168.1.1/igd.xml\r\n\r\n", want: "http://192.168.1.1/igd.xml"},
	{name: "no location", in: "HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\n\r\n", wantErr: "without location"},
	{name: "not ok", in: "HTTP/1.1 404 Not Found\r\nLOCATION: http://192.168.1.1/\r\n\r\n", wantErr: "status"},
	{name: "https", in: "HTTP/1.1 200 OK\r\nLOCATION: https://192.168.1.1/\r\n\r\n", wantErr: "want an http url"},
	{name: "relative", in: "HTTP/1.1 200 OK\r\nLOCATION: /rootDesc.xml\r\n\r\n", wantErr: "want an http url"},
	{name: "userinfo", in: "HTTP/1.1 200 OK\r\nLOCATION: http://u:p@192.168.1.1/\r\n\r\n", wantErr: "want an http url"},
	{name: "bad url", in: "HTTP/1.1 200 OK\r\nLOCATION: http://[::1/\r\n\r\n", wantErr: "ssdp location"},
	{name: "m-search echo", in: "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n", wantErr: "bad ssdp response"},
	{name: "empty", in: "", wantErr: "bad ssdp response"},
}

func TestParseSSDPResponse(t *testing.T) {
	t.Parallel()
	for _, tc := range ssdpCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSSDPResponse([]byte(tc.in))
			if tc.want != "" {
				if err != nil || got.String() != tc.want {
					t.Errorf("parseSSDPResponse() = %v, %v, want %s", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseSSDPResponse() = %v, %v, want error containing %q", got, err, tc.wantErr)
			}
		})
	}
}

func FuzzParseSSDPResponse(f *testing.F) {
	for _, tc := range ssdpCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		loc, err := parseSSDPResponse(b)
		if err != nil {
			return
		}
		if loc.Scheme != "http" || loc.Host == "" || loc.User != nil {
			t.Errorf("parseSSDPResponse(%q) accepted location %v", b, loc)
		}
		// An accepted location survives a round trip through its string form.
		again, err := url.Parse(loc.String())
		if err != nil || again.String() != loc.String() {
			t.Errorf("location %q does not round-trip: %v, %v", loc, again, err)
		}
	})
}

func TestCheckLocation(t *testing.T) {
	t.Parallel()
	from := netip.MustParseAddr("192.168.1.1")
	tests := []struct {
		loc  string
		want bool
	}{
		{"http://192.168.1.1:5000/rootDesc.xml", true},
		{"http://192.168.1.1/rootDesc.xml", true},
		{"http://192.168.1.2:5000/rootDesc.xml", false},
		{"http://127.0.0.1:5000/rootDesc.xml", false},
		{"http://router.lan:5000/rootDesc.xml", false},
		{"http://[::ffff:192.168.1.1]:5000/rootDesc.xml", true},
	}
	for _, tc := range tests {
		u, err := url.Parse(tc.loc)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkLocation(u, from); (err == nil) != tc.want {
			t.Errorf("checkLocation(%s, %v) = %v, want ok %v", tc.loc, from, err, tc.want)
		}
	}
}

var descCases = []struct {
	name        string
	in          string
	wantService string // "" means chooseService fails
	wantControl string
	wantErr     string // parse error
}{
	{
		name: "igd2 nested",
		in: `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><friendlyName>R</friendlyName>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType><deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType><serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>/ctl/IPConn</controlURL>
</service></serviceList></device></deviceList></device></deviceList></device></root>`,
		wantService: "WANIPConnection:2",
		wantControl: "http://192.168.1.1:5000/ctl/IPConn",
	},
	{
		name: "igd1 with URLBase and relative control",
		in: `<root xmlns="urn:schemas-upnp-org:device-1-0"><URLBase>http://192.168.1.1:49000/</URLBase><device>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType>
<controlURL>upnp/control/WANPPPConn1</controlURL></service></serviceList></device></root>`,
		wantService: "WANPPPConnection:1",
		wantControl: "http://192.168.1.1:49000/upnp/control/WANPPPConn1",
	},
	{
		name: "URLBase elsewhere",
		in: `<root xmlns="urn:schemas-upnp-org:device-1-0"><URLBase>http://10.9.9.9/</URLBase><device>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<controlURL>/ctl</controlURL></service></serviceList></device></root>`,
	},
	{
		name: "no namespace",
		in: `<root><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<controlURL>http://192.168.1.1:5000/c</controlURL></service></serviceList></device></root>`,
		wantService: "WANIPConnection:1",
		wantControl: "http://192.168.1.1:5000/c",
	},
	{
		name: "latin1 charset",
		in: `<?xml version="1.0" encoding="ISO-8859-1"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<controlURL>/c</controlURL></service></serviceList></device></root>`,
		wantService: "WANIPConnection:1",
		wantControl: "http://192.168.1.1:5000/c",
	},
	{name: "empty control url", in: `<root xmlns="urn:schemas-upnp-org:device-1-0"><device><serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType></service></serviceList></device></root>`},
	{name: "no services", in: `<root xmlns="urn:schemas-upnp-org:device-1-0"><device></device></root>`},
	{name: "wrong root", in: `<html><body>hi</body></html>`, wantErr: "bad xml"},
	{name: "truncated", in: `<root xmlns="urn:schemas-upnp-org:device-1-0"><device>`, wantErr: "bad xml"},
	{name: "utf-16", in: `<?xml version="1.0" encoding="UTF-16"?><root/>`, wantErr: "bad xml"},
	{name: "empty", in: ``, wantErr: "bad xml"},
}

func TestParseRootDesc(t *testing.T) {
	t.Parallel()
	loc := &url.URL{Scheme: "http", Host: "192.168.1.1:5000", Path: "/rootDesc.xml"}
	for _, tc := range descCases {
		t.Run(tc.name, func(t *testing.T) {
			root, err := parseRootDesc([]byte(tc.in), loc)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("parseRootDesc() = %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRootDesc() = %v", err)
			}
			c, svc, err := chooseService(root, loc)
			if tc.wantService == "" {
				if err == nil {
					t.Errorf("chooseService() = %s, want an error", svc)
				}
				return
			}
			if err != nil {
				t.Fatalf("chooseService() = %v", err)
			}
			ctl := c.GetServiceClient().SOAPClient.EndpointURL
			if svc != tc.wantService || ctl.String() != tc.wantControl {
				t.Errorf("chooseService() = %s at %s, want %s at %s", svc, ctl.String(), tc.wantService, tc.wantControl)
			}
		})
	}
}

func FuzzParseRootDesc(f *testing.F) {
	for _, tc := range descCases {
		f.Add([]byte(tc.in))
	}
	loc := &url.URL{Scheme: "http", Host: "192.168.1.1:5000", Path: "/rootDesc.xml"}
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := parseRootDesc(b, loc)
		if err != nil {
			return
		}
		c, _, err := chooseService(root, loc)
		if err != nil {
			return
		}
		ctl := c.GetServiceClient().SOAPClient.EndpointURL
		if ctl.Scheme != "http" || ctl.Hostname() != loc.Hostname() {
			t.Errorf("chooseService accepted control url %s for a description at %s", ctl.String(), loc)
		}
	})
}
