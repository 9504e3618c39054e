package upnp

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// Service types a fake gateway can offer.
const (
	svcIP2  = "urn:schemas-upnp-org:service:WANIPConnection:2"
	svcIP1  = "urn:schemas-upnp-org:service:WANIPConnection:1"
	svcPPP1 = "urn:schemas-upnp-org:service:WANPPPConnection:1"
	svcL3F  = "urn:schemas-upnp-org:service:Layer3Forwarding:1"
)

// fakeConfig shapes a fakeIGD. The zero value is a well-behaved IGD:2 gateway.
type fakeConfig struct {
	services   []string // WAN services offered; default {svcIP2}
	silentSSDP bool     // read M-SEARCH but never answer
	location   string   // LOCATION to advertise instead of our own
	hangDesc   bool     // description requests never answer
	descBody   string   // serve this instead of the generated description
	controlURL string   // controlURL to put in the description instead of /ctl/N
	externalIP string   // GetExternalIPAddress answer; default 198.51.100.7
	// fault decides, per SOAP call, the UPnP error to answer with (0: none).
	// n counts earlier calls of the same action.
	fault func(c soapCall, n int) int
}

// soapCall is one SOAP request the fake received.
type soapCall struct {
	ServiceType string // namespace from SOAPACTION
	Action      string
	Args        map[string]string
}

// fakeIGD is an Internet gateway on loopback: an SSDP responder on a UDP
// socket and an httptest server for the description and SOAP control.
type fakeIGD struct {
	t    *testing.T
	cfg  fakeConfig
	srv  *httptest.Server
	ssdp *net.UDPConn
	done chan struct{} // closed at cleanup; releases hanging handlers

	// mu guards the fields below.
	mu       sync.Mutex
	calls    []soapCall
	searches []string // raw M-SEARCH requests
	hangSOAP bool
}

func newFakeIGD(t *testing.T, cfg fakeConfig) *fakeIGD {
	t.Helper()
	if cfg.services == nil {
		cfg.services = []string{svcIP2}
	}
	if cfg.externalIP == "" {
		cfg.externalIP = "198.51.100.7"
	}
	f := &fakeIGD{t: t, cfg: cfg, done: make(chan struct{})}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /rootDesc.xml", f.handleDesc)
	mux.HandleFunc("POST /ctl/{n}", f.handleSOAP)
	f.srv = httptest.NewServer(mux)

	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatalf("listen ssdp: %v", err)
	}
	f.ssdp = conn
	var wg sync.WaitGroup
	wg.Go(f.serveSSDP)
	t.Cleanup(func() {
		close(f.done)
		f.ssdp.Close()
		wg.Wait()
		f.srv.Close()
	})
	return f
}

// ssdpAddr is where the fake listens for M-SEARCH.
func (f *fakeIGD) ssdpAddr() string { return f.ssdp.LocalAddr().String() }

// descURL is the root description URL.
func (f *fakeIGD) descURL() string { return f.srv.URL + "/rootDesc.xml" }

func (f *fakeIGD) setHangSOAP(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hangSOAP = v
}

// callsOf returns the recorded calls of one action.
func (f *fakeIGD) callsOf(action string) []soapCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []soapCall
	for _, c := range f.calls {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeIGD) searchRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.searches...)
}

func (f *fakeIGD) serveSSDP() {
	buf := make([]byte, 2048)
	for {
		n, from, err := f.ssdp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed at cleanup
		}
		req := string(buf[:n])
		f.mu.Lock()
		f.searches = append(f.searches, req)
		f.mu.Unlock()
		if f.cfg.silentSSDP || !strings.HasPrefix(req, "M-SEARCH * HTTP/1.1\r\n") {
			continue
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(req)))
		if err != nil {
			continue
		}
		st := r.Header.Get("St")
		loc := f.cfg.location
		if loc == "" {
			loc = f.descURL()
		}
		resp := fmt.Sprintf("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nEXT:\r\nST: %s\r\n"+
			"USN: uuid:fake-igd::%s\r\nLOCATION: %s\r\nSERVER: Fake/1.0 UPnP/1.1 FakeIGD/1.0\r\n\r\n", st, st, loc)
		f.ssdp.WriteToUDPAddrPort([]byte(resp), from)
	}
}

func (f *fakeIGD) handleDesc(w http.ResponseWriter, r *http.Request) {
	if f.cfg.hangDesc {
		select {
		case <-r.Context().Done():
		case <-f.done:
		}
		return
	}
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	if f.cfg.descBody != "" {
		fmt.Fprint(w, f.cfg.descBody)
		return
	}
	var svcs strings.Builder
	for i, st := range f.cfg.services {
		ctl := fmt.Sprintf("/ctl/%d", i)
		if f.cfg.controlURL != "" {
			ctl = f.cfg.controlURL
		}
		fmt.Fprintf(&svcs, "<service><serviceType>%s</serviceType><serviceId>urn:upnp-org:serviceId:S%d</serviceId>"+
			"<SCPDURL>/scpd/%d.xml</SCPDURL><controlURL>%s</controlURL><eventSubURL>/evt/%d</eventSubURL></service>",
			st, i, i, ctl, i)
	}
	fmt.Fprintf(w, `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><friendlyName>Fake IGD</friendlyName>
<UDN>uuid:fake-igd</UDN>
<serviceList><service><serviceType>%s</serviceType><serviceId>urn:upnp-org:serviceId:L3F</serviceId><SCPDURL>/l3f.xml</SCPDURL><controlURL>/ctl/l3f</controlURL><eventSubURL>/evt/l3f</eventSubURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType><friendlyName>WANDevice</friendlyName><UDN>uuid:fake-wan</UDN>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType><friendlyName>WANConnectionDevice</friendlyName><UDN>uuid:fake-wcd</UDN>
<serviceList>%s</serviceList>
</device></deviceList></device></deviceList></device></root>`, svcL3F, svcs.String())
}

func (f *fakeIGD) handleSOAP(w http.ResponseWriter, r *http.Request) {
	call, err := parseSOAPRequest(r)
	if err != nil {
		f.t.Errorf("fake gateway: bad SOAP request: %v", err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	n := 0
	for _, c := range f.calls {
		if c.Action == call.Action {
			n++
		}
	}
	f.calls = append(f.calls, call)
	hang := f.hangSOAP
	f.mu.Unlock()

	if hang {
		select {
		case <-r.Context().Done():
		case <-f.done:
		}
		return
	}
	if f.cfg.fault != nil {
		if code := f.cfg.fault(call, n); code != 0 {
			writeFault(w, code)
			return
		}
	}
	var out string
	switch call.Action {
	case "GetExternalIPAddress":
		out = "<NewExternalIPAddress>" + f.cfg.externalIP + "</NewExternalIPAddress>"
	case "AddPortMapping", "DeletePortMapping":
	default:
		writeFault(w, 401)
		return
	}
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	fmt.Fprintf(w, `<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:%sResponse xmlns:u="%s">%s</u:%sResponse></s:Body></s:Envelope>`,
		call.Action, call.ServiceType, out, call.Action)
}

var faultNames = map[int]string{
	401: "Invalid Action",
	501: "ActionFailed",
	606: "Action not authorized",
	714: "NoSuchEntryInArray",
	718: "ConflictInMappingEntry",
	725: "OnlyPermanentLeasesSupported",
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
func parseSOAPRequest(r *http.Request) (soapCall, error) {
	action := strings.Trim(r.Header.Get("SOAPACTION"), `"`)
	ns, name, ok := strings.Cut(action, "#")
	if !ok {
		return soapCall{}, fmt.Errorf("SOAPACTION %q", action)
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
		return soapCall{}, err
	}
	if err := xml.Unmarshal(body.Bytes(), &env); err != nil {
		return soapCall{}, fmt.Errorf("body: %w", err)
	}
	if env.Body.Action.XMLName.Local != name || env.Body.Action.XMLName.Space != ns {
		return soapCall{}, fmt.Errorf("body action %v does not match SOAPACTION %q", env.Body.Action.XMLName, action)
	}
	c := soapCall{ServiceType: ns, Action: name, Args: map[string]string{}}
	for _, a := range env.Body.Action.Args {
		c.Args[a.XMLName.Local] = a.Value
	}
	return c, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}
