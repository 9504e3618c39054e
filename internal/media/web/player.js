// The /watch player: plays the raw file when the browser can (canPlayType
// on the probed container and codecs, one audio track), else the HLS
// session through hls.js (or the browser's own HLS). Everything it loads
// comes from the daemon that served the page.
(function () {
  'use strict';
  var cfg = document.getElementById('cfg').dataset;
  var video = document.getElementById('video');
  var audioSel = document.getElementById('audio');
  var subsSel = document.getElementById('subs');
  var status = document.getElementById('status');
  var hls = null;
  // playerID names this page's player in its HLS requests (see playHLSjs).
  var playerID = Array.prototype.map.call(crypto.getRandomValues(new Uint8Array(8)), function (b) {
    return (b + 256).toString(16).slice(1);
  }).join('');

  // bufferingAt is where playback stood when the page said "Buffering…",
  // -1 once it says anything else.
  var bufferingAt = -1;
  function say(msg) {
    bufferingAt = -1;
    status.textContent = msg;
  }
  // buffering says "Buffering…", with detail (see swarmText) when given.
  function buffering(detail) {
    status.textContent = 'Buffering…' + (detail ? ' (' + detail + ')' : '');
    if (bufferingAt < 0) bufferingAt = video.currentTime;
  }
  // swarmText tells how the download goes: "3 peers, 1.2 MB/s".
  function swarmText(st) {
    if (!st.peers) return 'no peer connected';
    var rate = st.speed >= 1e6 ? (st.speed / 1e6).toFixed(1) + ' MB/s' : Math.round(st.speed / 1e3) + ' kB/s';
    return st.peers + (st.peers === 1 ? ' peer, ' : ' peers, ') + rate;
  }

  function fill(sel, items, offLabel) {
    while (sel.firstChild) sel.removeChild(sel.firstChild);
    if (offLabel) add(sel, -1, offLabel);
    items.forEach(function (it, i) { add(sel, i, it); });
    sel.disabled = items.length === 0 || (!offLabel && items.length < 2);
  }

  function add(sel, value, label) {
    var o = document.createElement('option');
    o.value = String(value);
    o.textContent = label;
    sel.appendChild(o);
  }

  // trackLabel names a track: the session's and hls.js's have a name, the
  // <video>'s own audio tracks a label.
  function trackLabel(t) {
    return t.name || t.label || t.language || t.lang || 'Track';
  }

  function canPlayRaw(info) {
    if (!info.sourceType || !info.raw) return false;
    // Only HLS gives every browser an audio menu.
    if ((info.audio || []).length > 1) return false;
    return video.canPlayType(info.sourceType) !== '';
  }

  function playRaw(info, resume) {
    document.body.dataset.engine = 'raw';
    sideTracks(info);
    fill(audioSel, (info.audio || []).map(trackLabel));
    load(info.raw, resume);
  }

  // sideTracks gives the <video> the session's text subtitles as <track>
  // elements (the raw file, and the browser's own HLS, which in Chromium
  // offers none of the renditions) and the subtitle menu over them. Called
  // again after a renewal, it replaces them with the new session's, keeping
  // the choice.
  var ownTracks = [];
  var stopWindows = [];
  function sideTracks(info) {
    ownTracks.forEach(function (tr) { video.removeChild(tr); });
    stopWindows.forEach(function (stop) { stop(); });
    stopWindows = [];
    var subs = vttSubtitles(info);
    ownTracks = subs.map(function (s, i) {
      var tr = document.createElement('track');
      tr.kind = 'subtitles';
      tr.label = trackLabel(s);
      if (s.language) tr.srclang = s.language;
      if (!s.windows) tr.src = s.vtt;
      video.appendChild(tr);
      // An embedded track: its whole file exists only once the download
      // is complete; its windows come from the bytes around them, so load
      // those around the playhead as it moves.
      if (s.windows) stopWindows.push(windowCues(tr, s, i));
      return tr;
    });
    var was = Number(subsSel.value);
    fill(subsSel, subs.map(trackLabel), 'Off');
    function show(want) {
      ownTracks.forEach(function (tr, i) { tr.track.mode = i === want ? 'showing' : 'disabled'; });
    }
    subsSel.onchange = function () {
      var want = Number(subsSel.value);
      if (want < 0) {
        show(want);
        return;
      }
      // The WebVTT files are the HLS session's, which the daemon closes
      // after hls.idle_timeout without a request, and raw playback makes
      // none: a track picked later would load from a closed session. Ask
      // for the session first (the open one, or a new one) and load the
      // track from its URL.
      fetchSession()
        .then(function (fresh) {
          vttSubtitles(fresh).forEach(function (s, i) {
            if (s.windows) return; // windowCues keeps its own URL
            var u = new URL(s.vtt, document.baseURI).href;
            if (ownTracks[i] && ownTracks[i].src !== u) ownTracks[i].src = u;
          });
        })
        .catch(function () {})
        .then(function () { show(want); });
    };
    if (was >= 0 && was < subs.length) {
      subsSel.value = String(was);
      show(was);
    }
  }

  // windowCues fills the cues of <track> tr (subtitle number i of the
  // session) from the track's windows around the playhead, while it is
  // shown, and returns a function that stops it. A window that fails (the
  // session closed after hls.idle_timeout) is asked for again from the
  // open session's URL.
  function windowCues(tr, s, i) {
    var url = s.windows, sec = s.windowSeconds, count = s.windowCount;
    var done = {}, busy = {}, seen = {};
    function load(w) {
      if (w < 0 || w >= count || done[w] || busy[w]) return;
      busy[w] = true;
      fetch(url.replace('{w}', String(w)), { credentials: 'same-origin' })
        .then(function (r) {
          if (!r.ok) throw new Error('window ' + w + ': ' + r.status);
          return r.text();
        })
        .then(function (text) {
          parseCues(text).forEach(function (c) {
            var key = c.start + '|' + c.end + '|' + c.text;
            if (seen[key]) return;
            seen[key] = true;
            tr.track.addCue(new VTTCue(c.start, c.end, c.text));
          });
          done[w] = true;
        })
        .catch(function () {
          return fetchSession().then(function (fresh) {
            var f = vttSubtitles(fresh)[i];
            if (f && f.windows) url = f.windows;
          }).catch(function () {});
        })
        .then(function () { delete busy[w]; });
    }
    function tick() {
      if (tr.track.mode === 'disabled') return;
      var w = Math.floor(video.currentTime / sec);
      load(w);
      load(w + 1);
    }
    video.addEventListener('timeupdate', tick);
    video.addEventListener('seeked', tick);
    var timer = setInterval(tick, 1000);
    return function () {
      video.removeEventListener('timeupdate', tick);
      video.removeEventListener('seeked', tick);
      clearInterval(timer);
    };
  }

  // parseCues reads the cues of a WebVTT file: [{start, end, text}].
  function parseCues(text) {
    var out = [];
    text.replace(/\r\n?/g, '\n').split(/\n\n+/).forEach(function (block) {
      var lines = block.replace(/^\n+|\n+$/g, '').split('\n');
      for (var k = 0; k < lines.length && k < 2; k++) {
        var m = /^((?:\d+:)?\d\d:\d\d\.\d\d\d)\s+-->\s+((?:\d+:)?\d\d:\d\d\.\d\d\d)/.exec(lines[k]);
        if (m) {
          out.push({ start: vttSeconds(m[1]), end: vttSeconds(m[2]), text: lines.slice(k + 1).join('\n') });
          return;
        }
      }
    });
    return out;
  }

  function vttSeconds(t) {
    var p = t.split(':').map(Number);
    return p.length === 3 ? p[0] * 3600 + p[1] * 60 + p[2] : p[0] * 60 + p[1];
  }

  // nativeAudio fills the audio menu from the <video>'s own audio tracks,
  // the HLS renditions the browser's own HLS found (Safari; Chromium with
  // its AudioVideoTracks feature). pick, when 0 or more, is chosen as soon
  // as that track exists (after a renewal).
  function nativeAudio(pick) {
    var at = video.audioTracks;
    if (!at) return;
    function sync() {
      var list = [];
      for (var i = 0; i < at.length; i++) list.push(at[i]);
      if (pick >= 0 && pick < list.length) {
        list.forEach(function (t, i) { t.enabled = i === pick; });
        pick = -1;
      }
      fill(audioSel, list.map(trackLabel));
      list.forEach(function (t, i) {
        if (t.enabled) {
          audioSel.value = String(i);
          document.body.dataset.audio = t.language || t.label;
        }
      });
    }
    at.onaddtrack = sync;
    at.onremovetrack = sync;
    at.onchange = sync;
    audioSel.onchange = function () {
      var want = Number(audioSel.value);
      for (var i = 0; i < at.length; i++) at[i].enabled = i === want;
    };
    sync();
  }

  function vttSubtitles(info) {
    return (info.subtitles || []).filter(function (s) { return s.vtt; });
  }

  // load gives the <video> src and, when resuming, goes back to where
  // playback was, playing on unless the user had paused.
  function load(src, resume) {
    video.src = src;
    if (resume) {
      video.addEventListener('loadedmetadata', function () {
        video.currentTime = resume.at;
      }, { once: true });
      if (resume.paused) return;
    }
    video.play().catch(function () { say('Press play'); });
  }

  // fetchSession asks the daemon for the page's session (its /watch/session
  // URL): the raw and HLS URLs and the tracks.
  function fetchSession() {
    return fetch(cfg.session, { cache: 'no-store', credentials: 'omit' })
      .then(function (r) {
        var e;
        if (!r.ok) {
          e = new Error('the daemon answered ' + r.status);
          e.status = r.status;
          throw e;
        }
        if (!ours(r)) {
          // Not the daemon: a proxy's page in its place (see ours).
          e = new Error('the daemon is not answering');
          e.status = 502;
          throw e;
        }
        return r.json();
      });
  }
  // ours: an OK answer to the page's JSON requests comes from the daemon
  // only if it is JSON. A reverse proxy may answer for a daemon it cannot
  // reach with a page of its own and a 200 (nginx's error_page with =200,
  // a "maintenance" page): that is the daemon gone, not there.
  function ours(r) {
    return /^application\/json/.test(r.headers.get('Content-Type') || '');
  }
  // gone: what a proxy in front of the daemon answers when it cannot reach
  // it (502, 504), and what the daemon answers while it shuts down or is
  // short of something for a while (503: shutting down, task paused, disk
  // full, too many sessions). Worth asking again, unlike a 404.
  function gone(status) {
    return status === 502 || status === 503 || status === 504;
  }

  // The daemon closes an HLS session nothing was asked of for a while
  // (hls.idle_timeout): after a long pause its URLs answer 404, and hls.js
  // or the browser's own HLS gives up on the next segment or track it
  // needs. A restarted daemon has no session either, and one that is
  // restarting answers nothing. Ask for the session again (the same token
  // opens a new one; while nothing answers, every 2 s for 3 min) and go on
  // where playback is, with the same tracks. Once more only after playback
  // went on or 10 s passed, so a daemon that is gone, or a stream the
  // browser cannot play, ends in an error instead of a loop.
  var renewing = false;
  var renewedAt = 0;
  var renewTries = 90;
  var playedSinceRenewal = true;
  var plays = 0; // 'playing' events so far
  video.addEventListener('playing', function () { playedSinceRenewal = true; plays++; });
  // pendingAt is where a renewal restarted the player (-1: none pending).
  // Until the element gets there (its first seek, hls.js's to its start
  // position or the raw path's after the metadata, or the user's) it shows
  // 0, and a second renewal meanwhile must not take that for the place.
  var pendingAt = -1;
  video.addEventListener('seeking', function () { pendingAt = -1; });
  video.addEventListener('playing', function () { pendingAt = -1; });
  // wantPlay is whether the user wants playback: a media error pauses the
  // element (the browser's own HLS does on a 404), which is not the user's
  // pause.
  var wantPlay = false;
  video.addEventListener('play', function () { wantPlay = true; });
  video.addEventListener('pause', function () { if (!video.error) wantPlay = false; });
  // cause says what noticed the loss ('probe', 'hls', 'error'); the page
  // keeps it in data-reconnect, for the tests.
  // force: a renewal the page chose (the task went on after a pause), not
  // one an error asked for, so not held back by the loop guard.
  function renewSession(cause, force) {
    if (renewing || (!force && !playedSinceRenewal && Date.now() - renewedAt < 10000)) return false;
    var engine = document.body.dataset.engine;
    renewing = true;
    document.body.dataset.reconnect = cause;
    var lostAt = pendingAt >= 0 ? pendingAt : video.currentTime;
    // Where to go on from, taken when the session is back, not when it
    // went: Firefox reports a raw stream's network error as soon as the
    // daemon is gone, then plays on from what it has buffered (a seek
    // meanwhile lands in that too), so the position at the error is behind.
    // An element that was emptied has no position of its own left.
    function resumeState() {
      return {
        at: pendingAt >= 0 ? pendingAt : video.readyState > 0 ? video.currentTime : lostAt,
        paused: !wantPlay,
        // What the menus say: the user's last choice, even one that
        // hls.js had not finished loading when the session went.
        audio: Number(audioSel.value),
        subs: Number(subsSel.value)
      };
    }
    say(cause === 'resume' ? 'Resuming…' : 'Reconnecting…');
    var tries = 0;
    // The raw file's URL outlives a restart of the daemon, and Chromium
    // asks for it again by itself for about 30 s: an element that plays on
    // meanwhile has recovered, and giving it the file again would only
    // take it back to its start for a moment. recovered() ends the
    // renewal then.
    var playsBefore = plays;
    function recovered() {
      if (engine !== 'raw' || plays <= playsBefore || video.error || video.readyState < 3) return false;
      renewing = false;
      renewedAt = Date.now();
      say('');
      return true;
    }
    function fail(e) {
      renewing = false;
      // The daemon answers every refusal alike: a revoked or expired
      // token, a removed task.
      say(e.status === 404 ? 'This link no longer plays: it has expired or was revoked, or the download was removed. Open it again from where you found it.' :
        'Playback failed: ' + e.message);
    }
    function attempt() {
      if (recovered()) return;
      fetchSession()
        .then(function (info) {
          if (recovered()) return;
          var resume = resumeState();
          renewing = false;
          renewedAt = Date.now();
          playedSinceRenewal = false;
          // Playing clears it too; a paused page must not stay on it.
          say('');
          if (engine === 'raw') {
            pendingAt = resume.at;
            load(info.raw, resume);
            return;
          }
          if (!info.hls) throw new Error('the daemon has no HLS for this file now');
          if (engine === 'native') {
            pendingAt = resume.at;
            playNativeHLS(info, resume);
            return;
          }
          if (hls) hls.destroy();
          hls = null;
          pendingAt = resume.at;
          playHLSjs(info, resume);
        }, function (e) {
          // fetch fails with a TypeError when nothing answers: the daemon
          // is restarting. Ask again every 2 s for 3 min, also while a
          // proxy says it cannot reach the daemon or the daemon says it is
          // busy (see gone). Any other answer that is not OK (the token was
          // revoked, the task removed) is final.
          if ((e instanceof TypeError || gone(e.status)) && ++tries < renewTries) {
            say(e.status === 503 ? 'Reconnecting… (the daemon is busy)' :
              'Reconnecting… (the daemon is not answering)');
            setTimeout(attempt, 2000);
            return;
          }
          fail(e);
        })
        .catch(fail);
    }
    attempt();
    return true;
  }

  // laterRecovery: an error of the element under hls.js. hls.js mostly
  // reports it too, as a fatal media error, and recovers (WebKitGTK fails
  // the first append after every audio switch, and plays on 0.5 s later).
  // When it has not within 2 s and the element still holds the error (seen
  // once in WebKitGTK on a busy machine), recover here. More than three of
  // these in a minute: false, and the page gives up.
  var elementErrors = [];
  function laterRecovery() {
    var now = Date.now();
    elementErrors = elementErrors.filter(function (t) { return now - t < 60000; });
    if (elementErrors.length >= 3) return false;
    elementErrors.push(now);
    var h = hls;
    setTimeout(function () {
      if (hls !== h || !video.error || renewing) return;
      document.body.dataset.mediaRecoveries = String(Number(document.body.dataset.mediaRecoveries || 0) + 1);
      h.recoverMediaError();
    }, 2000);
    return true;
  }

  function playHLSjs(info, resume) {
    document.body.dataset.engine = 'hlsjs';
    hls = new Hls({
      enableWorker: false, renderTextTracksNatively: true, subtitleDisplay: true,
      startPosition: resume ? resume.at : -1,
      // Name this player in its requests: two pages of one session far
      // apart then each get an ffmpeg of their own on the daemon.
      xhrSetup: function (xhr, url) {
        xhr.open('GET', url + (url.indexOf('?') < 0 ? '?' : '&') + 'p=' + playerID, true);
      }
    });
    hls.on(Hls.Events.MANIFEST_PARSED, function () {
      if (resume && resume.paused) return;
      video.play().catch(function () { say('Press play'); });
    });
    hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, function (_, d) {
      fill(audioSel, d.audioTracks.map(trackLabel));
      if (resume && resume.audio >= 0 && resume.audio < d.audioTracks.length) hls.audioTrack = resume.audio;
      audioSel.value = String(hls.audioTrack);
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, function (_, d) {
      fill(subsSel, d.subtitleTracks.map(trackLabel), 'Off');
      if (resume && resume.subs < d.subtitleTracks.length) hls.subtitleTrack = resume.subs;
      subsSel.value = String(hls.subtitleTrack);
    });
    hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, function (_, d) {
      audioSel.value = String(d.id);
      var t = hls.audioTracks[d.id];
      document.body.dataset.audio = t ? (t.lang || t.name) : '';
    });
    hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, function (_, d) {
      subsSel.value = String(d.id);
      var t = hls.subtitleTracks[d.id];
      document.body.dataset.subtitles = t ? (t.lang || t.name) : '';
    });
    hls.on(Hls.Events.ERROR, function (_, d) {
      if (!d.fatal) return;
      document.body.dataset.hlsError = d.type + ': ' + d.details;
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
        return;
      }
      // While the task is held (a pause), hls.js gives up on the segment
      // that cannot come; the page starts it again when the task goes on.
      if (d.type === Hls.ErrorTypes.NETWORK_ERROR && held) {
        heldDead = true;
        return;
      }
      if (d.type === Hls.ErrorTypes.NETWORK_ERROR && (renewing || renewSession('hls'))) return;
      say('Playback failed: ' + d.details);
    });
    audioSel.onchange = function () {
      hls.audioTrack = Number(audioSel.value);
      // hls.js (1.6) loads a newly picked audio track from the position
      // playback started at, then from the playhead: two segments, and for
      // the daemon two ffmpeg starts. Restarting the load at the playhead
      // makes the first segment asked for the one that is needed.
      hls.startLoad(video.currentTime);
    };
    subsSel.onchange = function () { hls.subtitleTrack = Number(subsSel.value); };
    hls.loadSource(info.hls);
    hls.attachMedia(video);
  }

  function playNativeHLS(info, resume) {
    document.body.dataset.engine = 'native';
    nativeAudio(resume ? resume.audio : -1);
    sideTracks(info);
    load(info.hls, resume);
  }

  // hls.js (540 KB) is fetched and parsed only when the page needs it, after
  // the session answered: the raw path never pays for it, and the session's
  // probe does not wait behind it.
  function loadHlsJS() {
    return new Promise(function (resolve) {
      if (window.Hls) { resolve(); return; }
      var s = document.createElement('script');
      s.src = '/watch/assets/hls.min.js';
      s.onload = function () { resolve(); };
      s.onerror = function () { resolve(); };
      document.body.appendChild(s);
    });
  }

  video.addEventListener('playing', function () { say(''); });
  // While the page reconnects, the element may run out of what it has
  // buffered (Firefox plays on after a network error): that is still the
  // daemon not answering, not buffering.
  video.addEventListener('waiting', function () {
    if (renewing || held) return;
    buffering('');
  });
  // WebKitGTK (GStreamer) plays on after a seek in the raw file with its
  // readyState left at HAVE_CURRENT_DATA, so 'playing' never comes: time
  // moving on ends "Buffering…" too.
  video.addEventListener('seeked', function () {
    if (bufferingAt >= 0) bufferingAt = video.currentTime;
  });
  video.addEventListener('timeupdate', function () {
    if (bufferingAt < 0 || video.seeking || video.paused) return;
    if (video.currentTime > bufferingAt + 0.25) say('');
  });
  video.addEventListener('error', function () {
    // Already reconnecting: the new session replaces this element's source.
    if (renewing) return;
    var engine = document.body.dataset.engine;
    // The raw file: only a network error (the daemon went away) is worth
    // another try; the browser's own HLS reports a closed session's 404 as
    // a media error too.
    var network = video.error && video.error.code === video.error.MEDIA_ERR_NETWORK;
    if (engine === 'native' || (engine === 'raw' && network)) {
      // A paused task answers the bytes it lacks with 503, which the
      // element takes for a network error: say so, and go on when the task
      // does. Anything else (nothing answers: the daemon is gone) renews.
      askState().then(function (st) {
        if (renewing) return;
        if (st.wait) {
          heldDead = true;
          hold(st.wait);
          return;
        }
        if (!renewSession('error')) say('This browser cannot play this stream.');
      });
      return;
    }
    if (engine === 'hlsjs' && hls && laterRecovery()) return;
    say('This browser cannot play this stream.');
  });

  // A daemon that went away shows late: Chromium retries a raw stream's
  // request for about 30 s before it reports an error, and hls.js retries
  // a segment for about 14 s; the page would say "Buffering…" all that
  // time. So once the element has waited 2 s for data, ask the daemon for
  // a small file, again every 2 s while it waits; when nothing answers,
  // reconnect at once. A daemon that answers is only slow: nothing to do.
  // Waiting is a seek that has not landed, or playback that should go on
  // but has too little data and whose time has not moved since the last
  // look (WebKitGTK plays on after a seek with readyState left at
  // HAVE_CURRENT_DATA).
  var stuckSince = 0;
  var probing = false;
  var lookedAt = -1;
  function stuck() {
    return video.seeking ||
      (!video.paused && !video.ended && video.readyState < 3 && video.currentTime === lookedAt);
  }
  // A seek that never lands: WebKitGTK, on a busy machine, has left the
  // first seek hls.js makes (to where the buffered data begins) pending for
  // good with the whole title buffered around it, and no 'seeked'. When a
  // seek has been pending for 3 s with data buffered at and after its
  // target, ask for the same place again.
  var seekingSince = 0;
  function nudgeSeek() {
    if (!video.seeking) {
      seekingSince = 0;
      return;
    }
    if (!seekingSince) seekingSince = Date.now();
    if (Date.now() - seekingSince < 3000) return;
    var at = video.currentTime;
    for (var i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= at && video.buffered.end(i) > at + 0.5) {
        seekingSince = Date.now();
        document.body.dataset.seekNudges = String(Number(document.body.dataset.seekNudges || 0) + 1);
        video.currentTime = at;
        return;
      }
    }
  }
  setInterval(function () {
    nudgeSeek();
    var waiting = stuck();
    lookedAt = video.currentTime;
    if (renewing || !document.body.dataset.engine || !waiting) {
      stuckSince = 0;
      return;
    }
    if (!stuckSince) stuckSince = Date.now();
    if (probing || Date.now() - stuckSince < 2000) return;
    probing = true;
    askState()
      .then(function (st) {
        // Nothing answers, or a proxy's 502 (see gone): reconnect.
        if (st.gone) {
          if (!renewing && stuck()) renewSession('probe');
          return;
        }
        stuckSince = Date.now();
        if (st.wait) {
          hold(st.wait);
          return;
        }
        // Only slow: say how the download goes.
        if (!renewing && !held && st.peers !== undefined && stuck()) buffering(swarmText(st));
      })
      .then(function () { probing = false; });
  }, 500);

  // askState asks the daemon what the task waits for (/watch/state):
  // {wait: 'paused' | 'diskFull' | 'writeError'} when it downloads nothing
  // now, {gone: true} when nothing answers or a proxy cannot reach the
  // daemon, {} otherwise (any other answer: the daemon is there).
  function askState() {
    return fetch(cfg.state, { cache: 'no-store', credentials: 'omit' })
      .then(function (r) {
        if (gone(r.status) || (r.ok && !ours(r))) return { gone: true };
        if (!r.ok) return {};
        return r.json().then(function (j) {
          if (!j) return {};
          var st = { peers: Number(j.peers) || 0, speed: Number(j.speedBps) || 0 };
          if (j.wait) st.wait = String(j.wait);
          return st;
        }, function () { return {}; });
      }, function () { return { gone: true }; });
  }

  // held is what the task waits for while playback waits on it ('' when
  // nothing); heldDead that the player gave up meanwhile (hls.js's fatal
  // error, the element's network error). While held, the page says why,
  // asks again every second, and once the task goes on, starts the player
  // again where it stands, or leaves it to go on by itself.
  var held = '';
  var heldDead = false;
  var heldTimer = 0;
  var holdText = {
    paused: 'The download is paused. Playback goes on when it is resumed.',
    diskFull: 'The daemon\'s disk is full. Playback goes on once space is freed.',
    writeError: 'The daemon cannot store the download. Playback goes on once it can.'
  };
  function hold(wait) {
    held = wait;
    document.body.dataset.wait = wait;
    say(holdText[wait] || 'The download is stopped. Playback goes on when it starts again.');
    if (heldTimer) return;
    heldTimer = setInterval(function () {
      askState().then(function (st) {
        if (st.wait) {
          if (st.wait !== held) hold(st.wait);
          return;
        }
        if (st.gone) return; // the probe and the errors handle that
        clearInterval(heldTimer);
        heldTimer = 0;
        held = '';
        delete document.body.dataset.wait;
        var dead = heldDead;
        heldDead = false;
        if (dead || stuck() || video.error) {
          renewSession('resume', true);
          return;
        }
        say('');
      });
    }, 1000);
  }

  // fileMenu: a torrent with several playable files (a season pack) gets a
  // file menu, and the next file plays when one ends. Each file is its own
  // page (the same id and token, another file=).
  function fileMenu(info) {
    var files = info.files || [];
    if (files.length < 2) return;
    var sel = document.getElementById('file');
    fill(sel, files.map(function (f) { return f.name; }));
    var at = -1;
    files.forEach(function (f, i) { if (f.index === info.file) at = i; });
    sel.value = String(at);
    document.getElementById('files').hidden = false;
    function go(i) {
      var q = new URLSearchParams(location.search);
      q.set('file', String(files[i].index));
      location.assign('/watch?' + q.toString());
    }
    sel.onchange = function () { go(Number(sel.value)); };
    video.addEventListener('ended', function () {
      if (at < 0 || at + 1 >= files.length) return;
      say('Next: ' + files[at + 1].name);
      document.body.dataset.next = String(files[at + 1].index);
      go(at + 1);
    });
  }

  // Where the viewer left this file, kept in the browser (by task and
  // file, never the token) every 5 s of playback, at a pause and when the
  // page goes: a new page of the same file goes on from there, unless that
  // was in its first 10 s or its last 30 s. A file that played to its end
  // starts again from the start.
  var posKey = '';
  var savedAt = 0;
  function savePosition(force) {
    if (!posKey || video.seeking || !(video.currentTime > 0)) return;
    if (!force && Date.now() - savedAt < 5000) return;
    savedAt = Date.now();
    try { localStorage.setItem(posKey, String(Math.floor(video.currentTime * 10) / 10)); } catch (e) {}
  }
  video.addEventListener('timeupdate', function () { savePosition(false); });
  video.addEventListener('pause', function () { savePosition(true); });
  window.addEventListener('pagehide', function () { savePosition(true); });
  video.addEventListener('ended', function () {
    try { if (posKey) localStorage.removeItem(posKey); } catch (e) {}
    posKey = '';
  });
  function clock(sec) {
    sec = Math.floor(sec);
    var h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, x = sec % 60;
    return (h ? h + ':' + (m < 10 ? '0' : '') : '') + m + ':' + (x < 10 ? '0' : '') + x;
  }
  function remembered(info) {
    var id = new URLSearchParams(location.search).get('id');
    if (!id || typeof info.file !== 'number') return undefined;
    posKey = 'torrentclaw.position.' + id + '.' + info.file;
    var at = NaN;
    try { at = Number(localStorage.getItem(posKey)); } catch (e) {}
    if (!(at > 10) || (info.duration > 0 && at > info.duration - 30)) return undefined;
    document.body.dataset.resumedFrom = String(at);
    return { at: at, paused: false, audio: -1, subs: NaN };
  }

  say('Preparing…');
  // The session's probe reads the file's head, which a paused task may
  // not have: say why it takes long.
  // A magnet added a moment ago has no metainfo yet: its session waits for
  // it, and the page says what it waits for.
  var starting = setInterval(function () {
    askState().then(function (st) {
      if (!starting || st.gone) return;
      if (!st.wait) {
        // The session waits for the file's head from the swarm.
        if (st.peers !== undefined) say('Preparing… (' + swarmText(st) + ')');
        return;
      }
      if (st.wait !== 'metadata') {
        say(holdText[st.wait] || 'Preparing…');
      } else {
        say(st.peers > 0 ? 'Getting the torrent\'s details from ' + st.peers + (st.peers === 1 ? ' peer…' : ' peers…') :
          'Looking for peers that have this torrent…');
      }
      document.body.dataset.wait = st.wait;
    });
  }, 1000);
  fetchSession()
    .then(function (info) {
      clearInterval(starting);
      starting = 0;
      delete document.body.dataset.wait;
      fileMenu(info);
      say('Loading…');
      if (canPlayRaw(info) || !info.hls) return info;
      return loadHlsJS().then(function () { return info; });
    })
    .then(function (info) {
      var resume = remembered(info);
      if (resume) {
        pendingAt = resume.at;
        say('Going on from ' + clock(resume.at) + '…');
      }
      if (canPlayRaw(info)) {
        playRaw(info, resume);
      } else if (info.hls && window.Hls && Hls.isSupported()) {
        playHLSjs(info, resume);
      } else if (info.hls && video.canPlayType('application/vnd.apple.mpegurl')) {
        playNativeHLS(info, resume);
      } else if (info.raw) {
        playRaw(info, resume);
      } else {
        say('This browser cannot play this file.');
      }
    })
    .catch(function (e) {
      clearInterval(starting);
      starting = 0;
      say('Cannot start: ' + e.message);
    });
})();
