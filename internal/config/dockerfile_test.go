package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/torrentclaw/cli/internal/config"
)

// There is no container engine on the machines that run the tests, so the image is never
// built here. TestDockerfile checks what can be checked without one: the properties the image
// must have (issue "Run it like real software": Debian slim with ffmpeg, a non-root user, data
// in a volume, a health check on /health) and that every TORRENTCLAW_* variable it sets is a
// config key whose value parses.

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

// parseDockerfile splits a Dockerfile into instructions: comments and blank lines dropped,
// lines ending in a backslash joined with the next. It is enough for our own file, not a
// general parser (no heredocs, no escape directive).
func parseDockerfile(t *testing.T, text string) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		cont := strings.HasSuffix(trimmed, `\`)
		cur.WriteString(strings.TrimSuffix(trimmed, `\`))
		cur.WriteByte(' ')
		if cont {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends inside a continued line (line %d)", start)
	}
	return out
}

// envPairs parses ENV's "K=V K2=V2" form (values without spaces or quotes, as ours are).
func envPairs(t *testing.T, in instruction) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for _, f := range strings.Fields(in.args) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || strings.ContainsAny(v, `"'$`) {
			t.Fatalf("line %d: ENV %q: want KEY=value pairs without quotes or expansions", in.line, f)
		}
		out[k] = v
	}
	return out
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	all := parseDockerfile(t, string(b))
	// The final stage: everything after the last FROM.
	last := -1
	for i, in := range all {
		if in.cmd == "FROM" {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	final := all[last:]
	image := strings.Fields(final[0].args)[0]
	if !strings.HasPrefix(image, "debian:") || !strings.HasSuffix(image, "-slim") {
		t.Errorf("final stage FROM %s, want a Debian slim image (debian:<release>-slim)", image)
	}

	var (
		installsFFmpeg, copiesBinary bool
		user, volume, health         string
		env                          = make(map[string]string)
		exposed                      []string
		entrypoint                   string
	)
	for _, in := range final {
		switch in.cmd {
		case "RUN":
			for _, part := range strings.Split(in.args, "&&") {
				f := strings.Fields(part)
				if len(f) > 2 && f[0] == "apt-get" && slices.Contains(f, "install") && slices.Contains(f, "ffmpeg") {
					installsFFmpeg = true
				}
			}
		case "COPY":
			if strings.Contains(in.args, "--from=") && strings.HasSuffix(in.args, " /usr/local/bin/torrentclaw") {
				copiesBinary = true
			}
		case "USER":
			user = in.args
		case "VOLUME":
			volume = in.args
		case "HEALTHCHECK":
			health = in.args
		case "ENV":
			for k, v := range envPairs(t, in) {
				env[k] = v
			}
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "ENTRYPOINT":
			entrypoint = in.args
		}
	}
	if !installsFFmpeg {
		t.Error("final stage installs no ffmpeg with apt-get (HLS needs ffmpeg and ffprobe)")
	}
	if !copiesBinary {
		t.Error("final stage copies no binary from the build stage to /usr/local/bin/torrentclaw")
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		t.Errorf("USER %q, want a non-root user", user)
	}
	dataDir := env["TORRENTCLAW_TORRENT_DATA_DIR"]
	if dataDir == "" || !strings.Contains(volume, `"`+dataDir+`"`) {
		t.Errorf("VOLUME %s does not hold the data dir %q (TORRENTCLAW_TORRENT_DATA_DIR)", volume, dataDir)
	}
	for _, k := range []string{"TORRENTCLAW_TORRENT_DOWNLOAD_DIR", "TORRENTCLAW_HLS_DIR", "XDG_CONFIG_HOME"} {
		if !strings.HasPrefix(env[k]+"/", dataDir+"/") {
			t.Errorf("%s=%q is outside the volume %q: it would be lost with the container", k, env[k], dataDir)
		}
	}
	port := env["TORRENTCLAW_STREAM_PORT"]
	if port == "" {
		port = strconv.Itoa(config.DefaultStreamPort)
	}
	if !slices.Contains(exposed, port+"/tcp") && !slices.Contains(exposed, port) {
		t.Errorf("EXPOSE %v does not include the stream port %s", exposed, port)
	}
	if env["TORRENTCLAW_STREAM_LISTEN"] != "0.0.0.0" {
		t.Errorf("TORRENTCLAW_STREAM_LISTEN=%q: a container must listen on all its addresses to be reached through -p", env["TORRENTCLAW_STREAM_LISTEN"])
	}
	if !strings.Contains(health, "CMD ") || !strings.Contains(health, "/health") {
		t.Errorf("HEALTHCHECK %q, want a CMD that requests /health", health)
	}
	if !strings.Contains(health, "127.0.0.1:${TORRENTCLAW_STREAM_PORT}/health") {
		t.Errorf("HEALTHCHECK %q does not ask the configured stream port on loopback", health)
	}
	if entrypoint != `["torrentclaw"]` && entrypoint != `["/usr/local/bin/torrentclaw"]` {
		t.Errorf("ENTRYPOINT %s, want the torrentclaw binary in exec form", entrypoint)
	}

	// Every TORRENTCLAW_ variable is a config key, and the config loads with all of them set.
	keys := make(map[string]bool)
	for _, k := range config.Keys() {
		keys[k.Env] = true
	}
	for k, v := range env {
		if strings.HasPrefix(k, config.EnvPrefix) && !keys[k] {
			t.Errorf("ENV %s is not a config key's variable", k)
		}
		t.Setenv(k, v) // HOME and XDG_CONFIG_HOME too: the default path is the image's
	}
	cfg, err := config.Load(config.DefaultPath()) // absent, as in a fresh container: defaults
	if err != nil {
		t.Fatalf("config.Load with the image's environment: %v", err)
	}
	if got := cfg.Torrent.DataDir; got != dataDir {
		t.Errorf("torrent.data_dir = %q with the image's environment, want %q", got, dataDir)
	}
}
