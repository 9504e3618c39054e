package upnptest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/upnptest"
)

// soap posts one action to the gateway's first WAN service and returns the
// HTTP status and body.
func soap(ctx context.Context, t *testing.T, g *upnptest.Gateway, action string, args ...string) (int, string, error) {
	t.Helper()
	var body strings.Builder
	fmt.Fprintf(&body, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:%s xmlns:u="%s">`,
		action, upnptest.ServiceIP2)
	for i := 0; i+1 < len(args); i += 2 {
		fmt.Fprintf(&body, "<%s>%s</%s>", args[i], args[i+1], args[i])
	}
	fmt.Fprintf(&body, "</u:%s></s:Body></s:Envelope>", action)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.Host()+"/ctl/0", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("SOAPACTION", `"`+upnptest.ServiceIP2+"#"+action+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func addArgs(proto, port, client string) []string {
	return []string{"NewRemoteHost", "", "NewExternalPort", port, "NewProtocol", proto, "NewInternalPort", "7000",
		"NewInternalClient", client, "NewEnabled", "1", "NewPortMappingDescription", "test", "NewLeaseDuration", "60"}
}

func TestMappingTable(t *testing.T) {
	t.Parallel()
	g := upnptest.New(t, upnptest.Config{})
	steps := []struct {
		name     string
		action   string
		args     []string
		wantCode int    // UPnP error code, 0 for success
		wantBody string // substring of a successful answer
	}{
		{"add", "AddPortMapping", addArgs("TCP", "5000", "127.0.0.1"), 0, "AddPortMappingResponse"},
		{"refresh by the same client", "AddPortMapping", addArgs("TCP", "5000", "127.0.0.1"), 0, ""},
		{"same port for another client", "AddPortMapping", addArgs("TCP", "5000", "127.0.0.2"), upnptest.CodeConflict, ""},
		{"same port other protocol", "AddPortMapping", addArgs("UDP", "5000", "127.0.0.2"), 0, ""},
		{"bad port", "AddPortMapping", addArgs("TCP", "x", "127.0.0.1"), upnptest.CodeInvalidArgs, ""},
		{"bad client", "AddPortMapping", addArgs("TCP", "5001", "router"), upnptest.CodeInvalidArgs, ""},
		{"delete unknown", "DeletePortMapping", []string{"NewRemoteHost", "", "NewExternalPort", "6000", "NewProtocol", "TCP"}, upnptest.CodeNoSuchEntry, ""},
		{"delete", "DeletePortMapping", []string{"NewRemoteHost", "", "NewExternalPort", "5000", "NewProtocol", "TCP"}, 0, "DeletePortMappingResponse"},
		{"external ip", "GetExternalIPAddress", nil, 0, "<NewExternalIPAddress>" + upnptest.DefaultExternalIP + "</NewExternalIPAddress>"},
		{"unknown action", "GetGenericPortMappingEntry", nil, upnptest.CodeInvalidAction, ""},
	}
	for _, st := range steps {
		code, body, err := soap(t.Context(), t, g, st.action, st.args...)
		if err != nil {
			t.Fatalf("%s: %s: %v", st.name, st.action, err)
		}
		if st.wantCode == 0 {
			if code != http.StatusOK || !strings.Contains(body, st.wantBody) {
				t.Errorf("%s: %s = %d %q, want 200 containing %q", st.name, st.action, code, body, st.wantBody)
			}
			continue
		}
		if want := fmt.Sprintf("<errorCode>%d</errorCode>", st.wantCode); code != http.StatusInternalServerError || !strings.Contains(body, want) {
			t.Errorf("%s: %s = %d %q, want 500 with %s", st.name, st.action, code, body, want)
		}
	}
	want := []upnptest.PortMapping{{Protocol: "UDP", ExternalPort: 5000, InternalPort: 7000, InternalClient: "127.0.0.2",
		Description: "test", LeaseSeconds: 60}}
	if got := g.Mappings(); !slices.Equal(got, want) {
		t.Errorf("Mappings() = %+v, want %+v", got, want)
	}
	if got := len(g.Calls("AddPortMapping")); got != 6 {
		t.Errorf("len(Calls(AddPortMapping)) = %d, want 6", got)
	}
	if c := g.Calls("DeletePortMapping"); len(c) != 2 || c[1].Args["NewExternalPort"] != "5000" || c[1].ServiceType != upnptest.ServiceIP2 {
		t.Errorf("Calls(DeletePortMapping) = %+v, want two, the second for port 5000", c)
	}
}

func TestFaultAndHang(t *testing.T) {
	t.Parallel()
	g := upnptest.New(t, upnptest.Config{ExternalIP: "203.0.113.9", Fault: func(c upnptest.Call, n int) int {
		if c.Action == "AddPortMapping" && n == 0 {
			return upnptest.CodeNotAuthorized
		}
		return 0
	}})
	code, body, err := soap(t.Context(), t, g, "AddPortMapping", addArgs("TCP", "5000", "127.0.0.1")...)
	if err != nil || code != http.StatusInternalServerError || !strings.Contains(body, "<errorCode>606</errorCode>") {
		t.Errorf("first AddPortMapping = %d %q %v, want the 606 fault", code, body, err)
	}
	if got := g.Mappings(); len(got) != 0 {
		t.Errorf("Mappings() after a faulted add = %+v, want none", got)
	}
	if code, _, err := soap(t.Context(), t, g, "AddPortMapping", addArgs("TCP", "5000", "127.0.0.1")...); err != nil || code != http.StatusOK {
		t.Errorf("second AddPortMapping = %d %v, want 200", code, err)
	}
	if _, body, _ := soap(t.Context(), t, g, "GetExternalIPAddress"); !strings.Contains(body, "203.0.113.9") {
		t.Errorf("GetExternalIPAddress = %q, want the configured 203.0.113.9", body)
	}

	g.SetHangSOAP(true)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := soap(ctx, t, g, "GetExternalIPAddress"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetExternalIPAddress on a hanging gateway = %v, want a deadline error", err)
	}
	if got := len(g.Calls("GetExternalIPAddress")); got != 2 {
		t.Errorf("len(Calls(GetExternalIPAddress)) = %d, want 2 (hanging calls are recorded)", got)
	}
	g.SetHangSOAP(false)
	if code, _, err := soap(t.Context(), t, g, "GetExternalIPAddress"); err != nil || code != http.StatusOK {
		t.Errorf("GetExternalIPAddress after the hang = %d %v, want 200", code, err)
	}
}

func TestSSDPAndDescription(t *testing.T) {
	t.Parallel()
	g := upnptest.New(t, upnptest.Config{Services: []string{upnptest.ServicePPP1, upnptest.ServiceIP1}})
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
	req := "M-SEARCH * HTTP/1.1\r\nHOST: " + g.SSDPAddr() + "\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: " + st + "\r\n\r\n"
	if _, err := conn.WriteToUDPAddrPort([]byte(req), netip.MustParseAddrPort(g.SSDPAddr())); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read SSDP answer: %v", err)
	}
	answer := string(buf[:n])
	for _, want := range []string{"HTTP/1.1 200 OK\r\n", "\r\nST: " + st + "\r\n", "\r\nLOCATION: " + g.RootDescURL() + "\r\n"} {
		if !strings.Contains(answer, want) {
			t.Errorf("SSDP answer %q lacks %q", answer, want)
		}
	}
	if got := g.Searches(); len(got) != 1 || got[0] != req {
		t.Errorf("Searches() = %q, want the one request", got)
	}

	resp, err := http.Get(g.RootDescURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	desc, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<friendlyName>" + upnptest.FriendlyName + "</friendlyName>",
		"<serviceType>" + upnptest.ServicePPP1 + "</serviceType><serviceId>urn:upnp-org:serviceId:S0</serviceId>",
		"<serviceType>" + upnptest.ServiceIP1 + "</serviceType><serviceId>urn:upnp-org:serviceId:S1</serviceId>",
		"<controlURL>/ctl/1</controlURL>",
	} {
		if !strings.Contains(string(desc), want) {
			t.Errorf("description lacks %q:\n%s", want, desc)
		}
	}
}
