package hls

// Tracks: every audio track of the input is an audio rendition (its own
// media playlist and segments, made by its own ffmpeg on demand), every text
// subtitle track (embedded, or a sidecar file handed in by the caller) a
// WebVTT subtitle rendition. Image subtitles are listed and burnt into the
// video only on request.

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"
)

// language is one row of the language table: ISO 639-1, 639-2/B, 639-2/T
// (when it differs) and English name.
type language struct {
	iso1, iso2b, iso2t, name string
}

// languages covers the languages torrents commonly label tracks with.
// Anything else keeps its own code (a valid BCP 47 primary subtag when it is
// two or three letters).
var languages = []language{
	{"en", "eng", "", "English"}, {"es", "spa", "", "Spanish"}, {"fr", "fre", "fra", "French"},
	{"de", "ger", "deu", "German"}, {"it", "ita", "", "Italian"}, {"pt", "por", "", "Portuguese"},
	{"ru", "rus", "", "Russian"}, {"ja", "jpn", "", "Japanese"}, {"zh", "chi", "zho", "Chinese"},
	{"ko", "kor", "", "Korean"}, {"ar", "ara", "", "Arabic"}, {"hi", "hin", "", "Hindi"},
	{"nl", "dut", "nld", "Dutch"}, {"sv", "swe", "", "Swedish"}, {"no", "nor", "", "Norwegian"},
	{"nb", "nob", "", "Norwegian Bokmål"}, {"nn", "nno", "", "Norwegian Nynorsk"},
	{"da", "dan", "", "Danish"}, {"fi", "fin", "", "Finnish"}, {"pl", "pol", "", "Polish"},
	{"cs", "cze", "ces", "Czech"}, {"sk", "slo", "slk", "Slovak"}, {"hu", "hun", "", "Hungarian"},
	{"ro", "rum", "ron", "Romanian"}, {"el", "gre", "ell", "Greek"}, {"tr", "tur", "", "Turkish"},
	{"he", "heb", "", "Hebrew"}, {"uk", "ukr", "", "Ukrainian"}, {"bg", "bul", "", "Bulgarian"},
	{"hr", "hrv", "", "Croatian"}, {"sr", "srp", "", "Serbian"}, {"sl", "slv", "", "Slovenian"},
	{"ca", "cat", "", "Catalan"}, {"eu", "baq", "eus", "Basque"}, {"gl", "glg", "", "Galician"},
	{"th", "tha", "", "Thai"}, {"vi", "vie", "", "Vietnamese"}, {"id", "ind", "", "Indonesian"},
	{"ms", "may", "msa", "Malay"}, {"fa", "per", "fas", "Persian"}, {"et", "est", "", "Estonian"},
	{"lv", "lav", "", "Latvian"}, {"lt", "lit", "", "Lithuanian"}, {"is", "ice", "isl", "Icelandic"},
	{"ta", "tam", "", "Tamil"}, {"te", "tel", "", "Telugu"}, {"bn", "ben", "", "Bengali"},
	{"ur", "urd", "", "Urdu"}, {"fil", "fil", "", "Filipino"}, {"tl", "tgl", "", "Tagalog"},
}

// languageAliases maps names people put in file names to ISO 639-1.
var languageAliases = map[string]string{
	"español": "es", "espanol": "es", "castellano": "es", "latino": "es",
	"français": "fr", "francais": "fr", "deutsch": "de", "italiano": "it",
	"português": "pt", "portugues": "pt", "brazilian": "pt", "русский": "ru",
	"nederlands": "nl", "svenska": "sv", "dansk": "da", "suomi": "fi", "polski": "pl",
	"magyar": "hu", "türkçe": "tr", "turkce": "tr", "ελληνικά": "el", "farsi": "fa",
}

// lookupLanguage finds a code or a name (any case) in the table.
func lookupLanguage(s string) (language, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return language{}, false
	}
	if a, ok := languageAliases[s]; ok {
		s = a
	}
	for _, l := range languages {
		if s == l.iso1 || s == l.iso2b || (l.iso2t != "" && s == l.iso2t) || s == strings.ToLower(l.name) {
			return l, true
		}
	}
	return language{}, false
}

// NormalizeLanguage returns the BCP 47 tag for a language given as BCP 47,
// ISO 639-1, ISO 639-2 (B or T) or an English name: "eng", "en-US" and
// "English" give "en" and "en-US"; "" when s is not a language
// ("und", empty, or not letters).
func NormalizeLanguage(s string) string {
	s = strings.TrimSpace(s)
	primary, rest, _ := strings.Cut(strings.ReplaceAll(s, "_", "-"), "-")
	if l, ok := lookupLanguage(primary); ok {
		primary = l.iso1
	} else {
		primary = strings.ToLower(primary)
		if len(primary) < 2 || len(primary) > 3 || !isLetters(primary) || primary == "und" || primary == "mul" || primary == "zxx" {
			return ""
		}
	}
	if rest == "" {
		return primary
	}
	// Keep a region or script subtag as written ("pt-BR", "zh-Hant").
	var tags []string
	for t := range strings.SplitSeq(rest, "-") {
		if t == "" || len(t) > 8 || !isAlnum(t) {
			return primary
		}
		switch {
		case len(t) == 2 && isLetters(t):
			t = strings.ToUpper(t)
		case len(t) == 4 && isLetters(t):
			t = strings.ToUpper(t[:1]) + strings.ToLower(t[1:])
		default:
			t = strings.ToLower(t)
		}
		tags = append(tags, t)
	}
	return primary + "-" + strings.Join(tags, "-")
}

// SameLanguage reports whether two language designations (any form
// NormalizeLanguage accepts) name the same language; a region in either is
// ignored ("en" matches "en-GB" and "eng").
func SameLanguage(a, b string) bool {
	pa, _, _ := strings.Cut(NormalizeLanguage(a), "-")
	pb, _, _ := strings.Cut(NormalizeLanguage(b), "-")
	return pa != "" && pa == pb
}

// languageName is a human name for a BCP 47 tag ("" for none).
func languageName(tag string) string {
	primary, _, _ := strings.Cut(tag, "-")
	if l, ok := lookupLanguage(primary); ok {
		return l.name
	}
	return tag
}

func isLetters(s string) bool {
	for _, c := range s {
		if c > unicode.MaxASCII || !unicode.IsLetter(c) {
			return false
		}
	}
	return s != ""
}

func isAlnum(s string) bool {
	for _, c := range s {
		if c > unicode.MaxASCII || !(unicode.IsLetter(c) || unicode.IsDigit(c)) {
			return false
		}
	}
	return s != ""
}

// Sidecar is a subtitle file that belongs to a video of the same torrent.
type Sidecar struct {
	// Index is the position of the file in the paths given to FindSidecars.
	Index int
	// Language is a BCP 47 tag, "" when the name says none.
	Language string
	// Label is what the file name says beyond the video's name ("en",
	// "English", "forced"), for the rendition's NAME.
	Label string
	// Format is the subtitle format by extension: "srt", "ass", "ssa" or "vtt".
	Format string
}

// sidecarExts are the text subtitle formats FindSidecars accepts.
var sidecarExts = map[string]string{".srt": "srt", ".ass": "ass", ".ssa": "ssa", ".vtt": "vtt"}

// subtitleDirs are directory names that hold a video's subtitles.
var subtitleDirs = map[string]bool{"subs": true, "sub": true, "subtitles": true, "subtitle": true}

// FindSidecars returns the subtitle files among paths (slash-separated, as
// in a torrent) that belong to the video at path video:
//
//   - next to it and named after it, with or without a language suffix:
//     "Film.srt", "Film.en.srt", "Film.spa.forced.ass";
//   - in a Subs/Subtitles folder next to it, directly or in a folder named
//     after the video: "Subs/2_English.srt", "Subs/Film/3_Spanish.srt".
//
// The language comes from the suffix or name when it is one ("en", "spa",
// "English"), else it is left empty.
func FindSidecars(video string, paths []string) []Sidecar {
	vdir, vfile := path.Split(video)
	vbase := strings.TrimSuffix(vfile, path.Ext(vfile))
	if vbase == "" {
		return nil
	}
	var out []Sidecar
	for i, p := range paths {
		if p == video {
			continue
		}
		dir, file := path.Split(p)
		ext := strings.ToLower(path.Ext(file))
		format, ok := sidecarExts[ext]
		if !ok {
			continue
		}
		base := strings.TrimSuffix(file, path.Ext(file))
		var label string
		switch {
		case dir == vdir && strings.EqualFold(base, vbase):
		case dir == vdir && len(base) > len(vbase)+1 && strings.EqualFold(base[:len(vbase)], vbase) && base[len(vbase)] == '.':
			label = base[len(vbase)+1:]
		case inSubtitleDir(vdir, vbase, dir):
			// "2_English": a leading track number is not part of the name.
			label = strings.TrimLeftFunc(base, func(r rune) bool { return unicode.IsDigit(r) })
			label = strings.TrimLeft(label, "_-. ")
			if label == "" {
				label = base
			}
		default:
			continue
		}
		out = append(out, Sidecar{Index: i, Language: labelLanguage(label), Label: label, Format: format})
	}
	return out
}

// inSubtitleDir: dir is vdir/Subs/ or vdir/Subs/<vbase>/.
func inSubtitleDir(vdir, vbase, dir string) bool {
	rest, ok := strings.CutPrefix(dir, vdir)
	if !ok {
		return false
	}
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	switch len(parts) {
	case 1:
		return subtitleDirs[strings.ToLower(parts[0])]
	case 2:
		return subtitleDirs[strings.ToLower(parts[0])] && strings.EqualFold(parts[1], vbase)
	}
	return false
}

// labelLanguage finds a language in a sidecar label: any of its
// dot/underscore/space separated words ("en", "spa.forced", "English SDH").
func labelLanguage(label string) string {
	for w := range strings.FieldsFuncSeq(label, func(r rune) bool { return r == '.' || r == '_' || r == ' ' || r == '(' || r == ')' }) {
		if l, ok := lookupLanguage(w); ok {
			return l.iso1
		}
		// "pt-BR", "en-US"
		if p, _, ok := strings.Cut(w, "-"); ok {
			if _, ok := lookupLanguage(p); ok {
				return NormalizeLanguage(w)
			}
		}
	}
	return ""
}

// SidecarInput is a sidecar subtitle file handed to a session.
type SidecarInput struct {
	// InputURL reads the file with HTTP (in the daemon: /stream on
	// loopback). Never logged.
	InputURL string
	// Language (BCP 47 or ISO 639), Label and Format as found by FindSidecars.
	Language, Label, Format string
}

// TrackInfo describes one audio or subtitle track of a session.
type TrackInfo struct {
	// Name is the rendition's NAME, unique within its kind.
	Name string `json:"name"`
	// Language is a BCP 47 tag, "" when unknown.
	Language string `json:"language,omitempty"`
	// Codec is the source codec as ffprobe names it ("aac", "ac3",
	// "subrip", "ass", "hdmv_pgs_subtitle").
	Codec string `json:"codec"`
	// Channels is the rendition's channel count (audio).
	Channels int `json:"channels,omitempty"`
	// Copy: the audio is passed through, not re-encoded.
	Copy bool `json:"copy,omitempty"`
	// Default: DEFAULT=YES in the master playlist.
	Default bool `json:"default,omitempty"`
	// Sidecar: a separate file of the torrent.
	Sidecar bool `json:"sidecar,omitempty"`
	// Image: a bitmap subtitle (PGS, VobSub, DVB); not a rendition.
	Image bool `json:"image,omitempty"`
	// Burnt: this image subtitle is burnt into the video.
	Burnt bool `json:"burnt,omitempty"`
	// URI is the rendition's playlist name ("audio-0.m3u8",
	// "subs-1.m3u8"); "" for image subtitles.
	URI string `json:"uri,omitempty"`
}

// audioRendition is one audio track of the input.
type audioRendition struct {
	info        TrackInfo
	streamIndex int // ffprobe stream index in the main input
	profile     string
	bitRate     int64 // source bits/s when copied; 0 unknown
}

// subRendition is one text subtitle track: embedded (streamIndex >= 0) or a
// sidecar (input >= 1: index into Session.inputs).
type subRendition struct {
	info        TrackInfo
	streamIndex int
	input       int
	format      string // sidecar format, "" for embedded
}

// textSubtitleCodecs are subtitle codecs ffmpeg converts to WebVTT.
var textSubtitleCodecs = map[string]bool{
	"subrip": true, "srt": true, "ass": true, "ssa": true, "mov_text": true,
	"webvtt": true, "text": true, "microdvd": true, "subviewer": true,
}

// imageSubtitleCodecs are bitmap subtitles: never a WebVTT rendition.
var imageSubtitleCodecs = map[string]bool{
	"hdmv_pgs_subtitle": true, "dvd_subtitle": true, "dvb_subtitle": true, "xsub": true,
}

// streamLanguage is a probe stream's language tag as BCP 47, "" if none.
func streamLanguage(st *probeStream) string {
	return NormalizeLanguage(st.Tags["language"])
}

// trackName builds a rendition NAME from its title, language and a detail
// ("5.1", "sidecar").
func trackName(title, lang, detail string, n int) string {
	name := strings.TrimSpace(title)
	if name == "" {
		name = languageName(lang)
	}
	if name == "" {
		name = "Track " + strconv.Itoa(n+1)
	}
	if detail != "" {
		name += " (" + detail + ")"
	}
	return name
}

// uniqueNames makes NAMEs unique within a group (RFC 8216 4.3.4.1).
func uniqueNames(infos []*TrackInfo) {
	seen := map[string]int{}
	for _, in := range infos {
		seen[in.Name]++
	}
	count := map[string]int{}
	for _, in := range infos {
		if seen[in.Name] > 1 {
			count[in.Name]++
			in.Name = fmt.Sprintf("%s %d", in.Name, count[in.Name])
		}
	}
}

// channelLabel says how many channels a source track has, for its NAME.
func channelLabel(ch int) string {
	switch ch {
	case 0, 1, 2:
		return ""
	case 6:
		return "5.1"
	case 8:
		return "7.1"
	default:
		return strconv.Itoa(ch) + " ch"
	}
}

// planTracks builds the audio and subtitle renditions of a session from the
// probe and the sidecars, and picks the defaults.
func planTracks(mi *mediaInfo, sidecars []SidecarInput, audioLang, subLang string) ([]*audioRendition, []*subRendition) {
	var audios []*audioRendition
	for i, st := range mi.audios {
		lang := streamLanguage(st)
		copyAudio := canCopyAudio(st)
		ch := 2
		if copyAudio {
			ch = st.Channels
		}
		a := &audioRendition{streamIndex: st.Index, profile: st.Profile, info: TrackInfo{
			Name:     trackName(st.Tags["title"], lang, channelLabel(st.Channels), i),
			Language: lang, Codec: st.CodecName, Channels: ch, Copy: copyAudio,
			URI: audioPlaylistName(i),
		}}
		if copyAudio {
			a.bitRate, _ = strconv.ParseInt(st.BitRate, 10, 64)
		}
		audios = append(audios, a)
	}
	// Default audio: the requested language, else the source's default
	// track, else the first.
	def := -1
	for i, st := range mi.audios {
		if audioLang != "" && SameLanguage(audioLang, streamLanguage(st)) {
			def = i
			break
		}
	}
	if def < 0 {
		for i, st := range mi.audios {
			if st.Disposition["default"] == 1 {
				def = i
				break
			}
		}
	}
	if def < 0 && len(audios) > 0 {
		def = 0
	}
	if def >= 0 {
		audios[def].info.Default = true
	}

	var subs []*subRendition
	n := 0
	for _, st := range mi.subs {
		lang := streamLanguage(st)
		detail := ""
		if st.Disposition["forced"] == 1 {
			detail = "forced"
		}
		r := &subRendition{streamIndex: st.Index, info: TrackInfo{
			Name: trackName(st.Tags["title"], lang, detail, n), Language: lang, Codec: st.CodecName,
		}}
		switch {
		case textSubtitleCodecs[st.CodecName]:
			r.info.URI = subtitlePlaylistName(n)
			n++
		case imageSubtitleCodecs[st.CodecName]:
			r.info.Image = true
		default:
			continue // unknown subtitle codec: ffmpeg could not convert it
		}
		subs = append(subs, r)
	}
	for i, sc := range sidecars {
		lang := NormalizeLanguage(sc.Language)
		title := ""
		if lang == "" {
			title = sc.Label
		}
		r := &subRendition{streamIndex: -1, input: i + 1, format: sc.Format, info: TrackInfo{
			Name: trackName(title, lang, "", n), Language: lang, Codec: sc.Format, Sidecar: true,
			URI: subtitlePlaylistName(n),
		}}
		n++
		subs = append(subs, r)
	}
	if subLang != "" {
		for _, r := range subs {
			if !r.info.Image && SameLanguage(subLang, r.info.Language) {
				r.info.Default = true
				break
			}
		}
	}
	infos := make([]*TrackInfo, 0, len(audios))
	for _, a := range audios {
		infos = append(infos, &a.info)
	}
	uniqueNames(infos)
	infos = infos[:0]
	for _, r := range subs {
		infos = append(infos, &r.info)
	}
	uniqueNames(infos)
	return audios, subs
}

// burnTarget picks the image subtitle to burn in: the requested language,
// else the source's default, else the first. nil when there is none.
func burnTarget(subs []*subRendition, mi *mediaInfo, lang string) *subRendition {
	var first, def *subRendition
	for _, r := range subs {
		if !r.info.Image {
			continue
		}
		if lang != "" && SameLanguage(lang, r.info.Language) {
			return r
		}
		if first == nil {
			first = r
		}
		for _, st := range mi.subs {
			if st.Index == r.streamIndex && st.Disposition["default"] == 1 && def == nil {
				def = r
			}
		}
	}
	if def != nil {
		return def
	}
	return first
}
