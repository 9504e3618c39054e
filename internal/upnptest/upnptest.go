package upnptest

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Service types a fake gateway can offer.
const (
	ServiceIP2  = "urn:schemas-upnp-org:service:WANIPConnection:2"
	ServiceIP1  = "urn:schemas-upnp-org:service:WANIPConnection:1"
	ServicePPP1 = "urn:schemas-upnp-org:service:WANPPPConnection:1"
	// ServiceL3F is not a WAN connection service; a gateway offering only
	// it cannot map ports.
	ServiceL3F = "urn:schemas-upnp-org:service:Layer3Forwarding:1"
)

// DefaultExternalIP is what GetExternalIPAddress answers unless
// [Config.ExternalIP] says otherwise (TEST-NET-2, RFC 5737).
const DefaultExternalIP = "198.51.100.7"

// FriendlyName is the gateway's name in its description.
const FriendlyName = "Fake IGD"

// UPnP error codes the fake answers with on its own (IGD WANIPConnection
// service templates, section 2.4).
const (
	CodeInvalidAction = 401
	CodeInvalidArgs   = 402
	CodeActionFailed  = 501
	CodeNotAuthorized = 606
	CodeNoSuchEntry   = 714
	CodeConflict      = 718
	CodeOnlyPermanent = 725
)

var faultNames = map[int]string{
	CodeInvalidAction: "Invalid Action",
	CodeInvalidArgs:   "Invalid Args",
	CodeActionFailed:  "ActionFailed",
	CodeNotAuthorized: "Action not authorized",
	CodeNoSuchEntry:   "NoSuchEntryInArray",
	CodeConflict:      "ConflictInMappingEntry",
	CodeOnlyPermanent: "OnlyPermanentLeasesSupported",
}

// Config shapes a [Gateway]. The zero value is a well-behaved IGD:2 gateway.
type Config struct {
	// Services are the WAN services offered, in description order
	// (default {ServiceIP2}).
	Services []string
	// SilentSSDP reads M-SEARCH requests but never answers them.
	SilentSSDP bool
	// Location is advertised in SSDP answers instead of [Gateway.RootDescURL].
	Location string
	// HangDesc makes description requests never answer (until the test ends).
	HangDesc bool
	// DescBody is served instead of the generated description.
	DescBody string
	// ControlURL is put in the description instead of /ctl/N.
	ControlURL string
	// ExternalIP is the GetExternalIPAddress answer (default
	// [DefaultExternalIP]).
	ExternalIP string
	// Fault decides, per SOAP call, the UPnP error code to answer with
	// (0: none, go on normally). n counts earlier calls of the same action.
	// A faulted call does not change the mapping table.
	Fault func(c Call, n int) int
}

// Call is one SOAP request the gateway received.
type Call struct {
	ServiceType string            // namespace from SOAPACTION
	Action      string            // e.g. "AddPortMapping"
	Args        map[string]string // argument name to value, e.g. "NewProtocol": "TCP"
}

// PortMapping is one entry of the gateway's mapping table.
type PortMapping struct {
	Protocol       string // "TCP" or "UDP"
	ExternalPort   uint16
	InternalPort   uint16
	InternalClient string
	Description    string
	LeaseSeconds   uint32 // 0: permanent
}

// Gateway is a fake Internet gateway on loopback. It is safe for concurrent
// use; it stops when the test ends.
type Gateway struct {
	t    testing.TB
	cfg  Config
	srv  *httptest.Server
	ssdp *net.UDPConn
	done chan struct{} // closed at cleanup; releases hanging handlers

	// mu guards the fields below.
	mu       sync.Mutex
	calls    []Call
	searches []string // raw M-SEARCH requests
	hangSOAP bool
	table    map[mappingKey]PortMapping
}

type mappingKey struct {
	protocol string
	port     uint16
}

// New starts a gateway on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB, cfg Config) *Gateway {
	t.Helper()
	if cfg.Services == nil {
		cfg.Services = []string{ServiceIP2}
	}
	if cfg.ExternalIP == "" {
		cfg.ExternalIP = DefaultExternalIP
	}
	g := &Gateway{t: t, cfg: cfg, done: make(chan struct{}), table: map[mappingKey]PortMapping{}}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /rootDesc.xml", g.handleDesc)
	mux.HandleFunc("POST /ctl/{n}", g.handleSOAP)
	g.srv = httptest.NewServer(mux)

	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		g.srv.Close()
		t.Fatalf("listen ssdp: %v", err)
	}
	g.ssdp = conn
	var wg sync.WaitGroup
	wg.Go(g.serveSSDP)
	t.Cleanup(func() {
		close(g.done)
		g.ssdp.Close()
		wg.Wait()
		g.srv.Close()
	})
	return g
}

// SSDPAddr is the ip:port where the gateway listens for M-SEARCH.
func (g *Gateway) SSDPAddr() string { return g.ssdp.LocalAddr().String() }

// RootDescURL is the URL of the root device description.
func (g *Gateway) RootDescURL() string { return g.srv.URL + "/rootDesc.xml" }

// Host is the host:port serving the description and SOAP control.
func (g *Gateway) Host() string { return g.srv.Listener.Addr().String() }

// SetHangSOAP makes SOAP requests hang (never answer until the client gives
// up or the test ends) while v is true. Hanging requests are still recorded.
func (g *Gateway) SetHangSOAP(v bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hangSOAP = v
}

// Calls returns the recorded SOAP calls of one action, oldest first.
func (g *Gateway) Calls(action string) []Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(g.calls), func(c Call) bool { return c.Action != action })
}

// Searches returns the raw M-SEARCH requests received, oldest first.
func (g *Gateway) Searches() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.searches)
}

// Mappings returns the mapping table, ordered by protocol and external port.
func (g *Gateway) Mappings() []PortMapping {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]PortMapping, 0, len(g.table))
	for _, m := range g.table {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b PortMapping) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.ExternalPort, b.ExternalPort))
	})
	return out
}

func (g *Gateway) serveSSDP() {
	buf := make([]byte, 2048)
	for {
		n, from, err := g.ssdp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed at cleanup
		}
		req := string(buf[:n])
		g.mu.Lock()
		g.searches = append(g.searches, req)
		g.mu.Unlock()
		if g.cfg.SilentSSDP || !strings.HasPrefix(req, "M-SEARCH * HTTP/1.1\r\n") {
			continue
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(req)))
		if err != nil {
			continue
		}
		st := r.Header.Get("St")
		loc := g.cfg.Location
		if loc == "" {
			loc = g.RootDescURL()
		}
		resp := fmt.Sprintf("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nEXT:\r\nST: %s\r\n"+
			"USN: uuid:fake-igd::%s\r\nLOCATION: %s\r\nSERVER: Fake/1.0 UPnP/1.1 FakeIGD/1.0\r\n\r\n", st, st, loc)
		_, _ = g.ssdp.WriteToUDPAddrPort([]byte(resp), from) // UDP: a lost answer is a lost answer
	}
}

func (g *Gateway) handleDesc(w http.ResponseWriter, r *http.Request) {
	if g.cfg.HangDesc {
		select {
		case <-r.Context().Done():
		case <-g.done:
		}
		return
	}
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	if g.cfg.DescBody != "" {
		fmt.Fprint(w, g.cfg.DescBody)
		return
	}
	var svcs strings.Builder
	for i, st := range g.cfg.Services {
		ctl := fmt.Sprintf("/ctl/%d", i)
		if g.cfg.ControlURL != "" {
			ctl = g.cfg.ControlURL
		}
		fmt.Fprintf(&svcs, "<service><serviceType>%s</serviceType><serviceId>urn:upnp-org:serviceId:S%d</serviceId>"+
			"<SCPDURL>/scpd/%d.xml</SCPDURL><controlURL>%s</controlURL><eventSubURL>/evt/%d</eventSubURL></service>",
			st, i, i, ctl, i)
	}
	fmt.Fprintf(w, `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><friendlyName>%s</friendlyName>
<UDN>uuid:fake-igd</UDN>
<serviceList><service><serviceType>%s</serviceType><serviceId>urn:upnp-org:serviceId:L3F</serviceId><SCPDURL>/l3f.xml</SCPDURL><controlURL>/ctl/l3f</controlURL><eventSubURL>/evt/l3f</eventSubURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType><friendlyName>WANDevice</friendlyName><UDN>uuid:fake-wan</UDN>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType><friendlyName>WANConnectionDevice</friendlyName><UDN>uuid:fake-wcd</UDN>
<serviceList>%s</serviceList>
</device></deviceList></device></deviceList></device></root>`, FriendlyName, ServiceL3F, svcs.String())
}

func (g *Gateway) handleSOAP(w http.ResponseWriter, r *http.Request) {
	call, err := parseSOAPRequest(r)
	if err != nil {
		g.t.Errorf("fake gateway: bad SOAP request: %v", err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	n := 0
	for _, c := range g.calls {
		if c.Action == call.Action {
			n++
		}
	}
	g.calls = append(g.calls, call)
	hang := g.hangSOAP
	g.mu.Unlock()

	if hang {
		select {
		case <-r.Context().Done():
		case <-g.done:
		}
		return
	}
	if g.cfg.Fault != nil {
		if code := g.cfg.Fault(call, n); code != 0 {
			writeFault(w, code)
			return
		}
	}
	var out string
	switch call.Action {
	case "GetExternalIPAddress":
		out = "<NewExternalIPAddress>" + g.cfg.ExternalIP + "</NewExternalIPAddress>"
	case "AddPortMapping":
		if code := g.add(call.Args); code != 0 {
			writeFault(w, code)
			return
		}
	case "DeletePortMapping":
		if code := g.delete(call.Args); code != 0 {
			writeFault(w, code)
			return
		}
	default:
		writeFault(w, CodeInvalidAction)
		return
	}
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	fmt.Fprintf(w, `<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:%sResponse xmlns:u="%s">%s</u:%sResponse></s:Body></s:Envelope>`,
		call.Action, call.ServiceType, out, call.Action)
}

// add applies AddPortMapping to the table the way an IGD does: the same
// external port and protocol for the same client refreshes the entry,
// for another client it conflicts. It returns a UPnP error code or 0.
func (g *Gateway) add(args map[string]string) int {
	key, ok := parseKey(args)
	internal, err1 := strconv.ParseUint(args["NewInternalPort"], 10, 16)
	lease, err2 := strconv.ParseUint(args["NewLeaseDuration"], 10, 32)
	client, err3 := netip.ParseAddr(args["NewInternalClient"])
	if !ok || err1 != nil || err2 != nil || err3 != nil || internal == 0 {
		return CodeInvalidArgs
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.table[key]; ok && old.InternalClient != client.String() {
		return CodeConflict
	}
	g.table[key] = PortMapping{
		Protocol:       key.protocol,
		ExternalPort:   key.port,
		InternalPort:   uint16(internal),
		InternalClient: client.String(),
		Description:    args["NewPortMappingDescription"],
		LeaseSeconds:   uint32(lease),
	}
	return 0
}

// delete applies DeletePortMapping: 714 NoSuchEntryInArray for an unknown
// entry.
func (g *Gateway) delete(args map[string]string) int {
	key, ok := parseKey(args)
	if !ok {
		return CodeInvalidArgs
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.table[key]; !ok {
		return CodeNoSuchEntry
	}
	delete(g.table, key)
	return 0
}

func parseKey(args map[string]string) (mappingKey, bool) {
	port, err := strconv.ParseUint(args["NewExternalPort"], 10, 16)
	proto := args["NewProtocol"]
	if err != nil || port == 0 || (proto != "TCP" && proto != "UDP") {
		return mappingKey{}, false
	}
	return mappingKey{protocol: proto, port: uint16(port)}, true
}

func writeFault(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode><errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`,
		code, faultNames[code])
}

// parseSOAPRequest reads the action and its arguments the way a gateway
// does: from the SOAPACTION header and the first element of the body.
func parseSOAPRequest(r *http.Request) (Call, error) {
	action := strings.Trim(r.Header.Get("SOAPACTION"), `"`)
	ns, name, ok := strings.Cut(action, "#")
	if !ok {
		return Call{}, fmt.Errorf("SOAPACTION %q", action)
	}
	var env struct {
		Body struct {
			Action struct {
				XMLName xml.Name
				Args    []struct {
					XMLName xml.Name
					Value   string `xml:",chardata"`
				} `xml:",any"`
			} `xml:",any"`
		} `xml:"Body"`
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(r.Body); err != nil {
		return Call{}, err
	}
	if err := xml.Unmarshal(body.Bytes(), &env); err != nil {
		return Call{}, fmt.Errorf("body: %w", err)
	}
	if env.Body.Action.XMLName.Local != name || env.Body.Action.XMLName.Space != ns {
		return Call{}, fmt.Errorf("body action %v does not match SOAPACTION %q", env.Body.Action.XMLName, action)
	}
	c := Call{ServiceType: ns, Action: name, Args: map[string]string{}}
	for _, a := range env.Body.Action.Args {
		c.Args[a.XMLName.Local] = a.Value
	}
	return c, nil
}
