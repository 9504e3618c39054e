# torrentclaw daemon in a container.
#
#   docker build -t torrentclaw .
#   docker run -d --name torrentclaw -p 11818:11818 -p 42069:42069 -p 42069:42069/udp \
#     -v torrentclaw-data:/data torrentclaw
#
# Every config key can be set from the environment (TORRENTCLAW_<SECTION>_<KEY>,
# e.g. TORRENTCLAW_ORIGIN_API_URL, TORRENTCLAW_API_KEY); `docker exec torrentclaw
# torrentclaw status` talks to the daemon over its control socket in /data.
#
# This image has not been built where the tests run (no container engine there);
# internal/config/dockerfile_test.go checks the properties above from this file.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO off: a static binary, and the torrent library's pure-Go uTP.
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/torrentclaw/cli/internal/cli.version=${VERSION}" \
      -o /out/torrentclaw ./cmd/torrentclaw

FROM debian:bookworm-slim
# ffmpeg/ffprobe for HLS; curl for the health check; CA roots for an https origin.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 torrentclaw \
 && useradd --system --uid 10001 --gid torrentclaw --home-dir /data --shell /usr/sbin/nologin torrentclaw \
 && install -d -o torrentclaw -g torrentclaw -m 0700 /data
COPY --from=build /out/torrentclaw /usr/local/bin/torrentclaw

# State, control socket, downloads and HLS scratch all live in the volume.
ENV HOME=/data \
    XDG_CONFIG_HOME=/data/config \
    TORRENTCLAW_TORRENT_DATA_DIR=/data \
    TORRENTCLAW_TORRENT_DOWNLOAD_DIR=/data/downloads \
    TORRENTCLAW_HLS_DIR=/data/hls \
    TORRENTCLAW_STREAM_LISTEN=0.0.0.0 \
    TORRENTCLAW_STREAM_PORT=11818 \
    TORRENTCLAW_TORRENT_LISTEN_PORT=42069
VOLUME ["/data"]
USER torrentclaw:torrentclaw
WORKDIR /data
EXPOSE 11818/tcp 42069/tcp 42069/udp

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS --max-time 4 "http://127.0.0.1:${TORRENTCLAW_STREAM_PORT}/health" || exit 1

ENTRYPOINT ["torrentclaw"]
CMD ["daemon"]
