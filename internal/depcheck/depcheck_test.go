package depcheck

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/torrentclaw/cli"

// allowed lists, for each internal package, the internal packages it may
// import. It mirrors the table in STYLE.md; change both together.
var allowed = map[string][]string{
	"config":     {},
	"netaddr":    {},
	"token":      {},
	"engine":     {"netaddr"},
	"upnp":       {"netaddr"},
	"hls":        {},
	"media":      {"tasks", "engine", "token", "hls", "netaddr"},
	"tasks":      {"engine", "token", "hls", "netaddr"},
	"origin":     {"netaddr"},
	"control":    {"tasks"},
	"daemon":     {"config", "netaddr", "token", "engine", "upnp", "hls", "tasks", "media", "origin", "control", "metrics"},
	"cli":        {"config", "control", "daemon", "sample"},
	"sample":     {},
	"atomicfile": {},
	"metrics":    {},
	"enginetest": {"engine"},
	"upnptest":   {},
	"clienttest": {},
	"logtest":    {},
	"depcheck":   {},
	"ids":        {},
}

// everywhere lists the leaf packages every internal package may import
// (ids: the one validator for each identifier); they import nothing
// internal themselves.
var everywhere = map[string]bool{"ids": true}

// everyone lists packages any internal package may import: small helpers
// that import nothing internal themselves.
var everyone = map[string]bool{"atomicfile": true}

// testOnly lists the test-helper packages: any package may import them, but
// only from _test.go files.
var testOnly = map[string]bool{"enginetest": true, "upnptest": true, "clienttest": true, "logtest": true}

// thirdParty keeps each third-party library inside its boundary.
var thirdParty = map[string][]string{
	"github.com/anacrolix/torrent": {"engine", "enginetest"},
	"github.com/anacrolix/dht":     {"engine"},
	"go.etcd.io/bbolt":             {"engine"},
	"github.com/BurntSushi/toml":   {"config"},
	"github.com/huin/goupnp":       {"upnp"},
	"github.com/spf13/cobra":       {"cli"},
	// Metrics only; daemon's tests parse the scrape with prometheus/common.
	"github.com/prometheus/client_golang": {"metrics"},
	"github.com/prometheus/common":        {"metrics", "daemon"},
	"github.com/google/uuid":              {"engine", "hls", "tasks", "daemon", "origin", "control", "cli", "media"},
}

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func internalName(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, module+"/internal/")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return name, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestImports(t *testing.T) {
	for _, p := range listPackages(t) {
		from, ok := internalName(p.ImportPath)
		if !ok {
			if p.ImportPath == module+"/cmd/torrentclaw" {
				for _, imp := range p.Imports {
					if to, ok := internalName(imp); ok && to != "cli" {
						t.Errorf("cmd/torrentclaw imports internal/%s; main may import only cli", to)
					}
				}
			}
			continue
		}
		allow, known := allowed[from]
		if !known {
			t.Errorf("package internal/%s has no row in the import table (depcheck and STYLE.md)", from)
			continue
		}
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				if to, ok := internalName(imp); ok {
					if to == from {
						continue
					}
					if everywhere[to] {
						continue
					}
					if everyone[to] {
						continue
					}
					if testOnly[to] {
						if !test {
							t.Errorf("internal/%s imports %s outside _test.go files", from, to)
						}
						continue
					}
					if !contains(allow, to) {
						t.Errorf("internal/%s imports internal/%s, which the import table does not allow", from, to)
					}
					continue
				}
				for lib, owners := range thirdParty {
					if (imp == lib || strings.HasPrefix(imp, lib+"/")) && !contains(owners, from) {
						t.Errorf("internal/%s imports %s, which belongs only in %v", from, imp, owners)
					}
				}
			}
		}
		check(p.Imports, false)
		check(p.TestImports, true)
		check(p.XTestImports, true)
	}
}
