package config

import (
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Environment variables read by [Path] and [Load].
const (
	EnvConfig = "TORRENTCLAW_CONFIG"  // config file path, below the --config flag
	EnvAPIKey = "TORRENTCLAW_API_KEY" // overrides origin.api_key when not empty (TORRENTCLAW_ORIGIN_API_KEY wins)
)

// ErrUnknownKey is wrapped by the [KeyError] for a key the schema does not have.
var ErrUnknownKey = errors.New("unknown key")

// KeyError is one problem with one config key. [Load] returns every problem
// it finds joined with [errors.Join]; [Config.Validate] does the same with File
// and Line left empty.
type KeyError struct {
	File string // config file, or "$VAR" for a value from the environment; "" from Validate
	Line int    // 1-based line in File; 0 when unknown
	Key  string // dotted key, such as "stream.port"; "" for a syntax error with no key
	Err  error
}

// Error formats e as "file:line: key: problem", leaving out unknown parts.
func (e *KeyError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *KeyError) Unwrap() error { return e.Err }

// DefaultPath returns $XDG_CONFIG_HOME/torrentclaw/config.toml, else
// ~/.config/torrentclaw/config.toml, else "" when there is no home directory.
func DefaultPath() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "torrentclaw", "config.toml")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".config", "torrentclaw", "config.toml")
	}
	return ""
}

// Path resolves the config file: flagValue (--config) when set, else
// $TORRENTCLAW_CONFIG when set, else [DefaultPath].
func Path(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := os.Getenv(EnvConfig); p != "" {
		return p
	}
	return DefaultPath()
}

// Load reads the TOML file at path over [Default], applies environment
// overrides (TORRENTCLAW_<SECTION>_<KEY> for every key, and
// $TORRENTCLAW_API_KEY), fills derived paths and validates the result.
//
// A missing file is an error, except at [DefaultPath] (or path ""), where it
// means "use the defaults". Unknown keys, values of the wrong type or form, and
// validation failures are all reported at once, each a [*KeyError] naming the
// file, the line and the key (or the environment variable), joined with
// [errors.Join].
func Load(path string) (Config, error) {
	c, _, err := LoadSources(path)
	return c, err
}

// LoadSources is [Load] that also says where each value came from.
func LoadSources(path string) (Config, Sources, error) {
	if path == "" {
		return loadSources("", nil, os.LookupEnv)
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		return loadSources(path, data, os.LookupEnv)
	case errors.Is(err, fs.ErrNotExist) && path == DefaultPath():
		// No file where we looked by default: defaults, and problems (say,
		// from the environment) name no file.
		return loadSources("", nil, os.LookupEnv)
	default:
		return Config{}, nil, fmt.Errorf("read config: %w", err)
	}
}

// load is [Load] on bytes already read, with the environment injected.
func load(file string, data []byte, lookupEnv func(string) (string, bool)) (Config, error) {
	c, _, err := loadSources(file, data, lookupEnv)
	return c, err
}

// loadSources is [LoadSources] on bytes already read, with the environment
// injected. Precedence: environment > file > defaults.
func loadSources(file string, data []byte, lookupEnv func(string) (string, bool)) (Config, Sources, error) {
	c := defaults()
	lines := map[string]int{}
	problems, parsed := decode(file, data, &c, lines)
	if !parsed {
		// Syntax error: nothing was decoded, validating defaults says nothing.
		return Config{}, nil, joinProblems(problems)
	}
	sources := Sources{}
	for _, k := range Keys() {
		if l, ok := lines[k.Name]; ok {
			sources[k.Name] = fmt.Sprintf("file line %d", l)
		}
	}

	problems = append(problems, applyEnv(&c, lookupEnv, sources)...)
	if v, ok := lookupEnv(EnvAPIKey); ok && v != "" {
		if _, generic := lookupEnv(EnvName("origin.api_key")); !generic {
			c.Origin.APIKey = v
			sources["origin.api_key"] = "$" + EnvAPIKey
		}
	}
	c.resolvePaths()

	bad := map[string]bool{}
	for _, p := range problems {
		bad[p.Key] = true
	}
	for _, p := range c.problems() {
		if bad[p.Key] {
			continue // the decode problem explains it; the value is still the default
		}
		if src := sources[p.Key]; strings.HasPrefix(src, "$") {
			p.File = src
		} else {
			p.File, p.Line = file, lines[p.Key]
		}
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		// File order; problems without a line (a missing key, the
		// environment) go last.
		slices.SortStableFunc(problems, func(a, b *KeyError) int {
			return cmp.Compare(lineOrder(a.Line), lineOrder(b.Line))
		})
		return Config{}, nil, joinProblems(problems)
	}
	return c, sources, nil
}

func lineOrder(line int) int {
	if line <= 0 {
		return math.MaxInt32
	}
	return line
}

// joinProblems joins ps into one error; errors.Join keeps each one reachable
// through errors.As.
func joinProblems(ps []*KeyError) error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// decode sets the fields of c from the TOML in data, recording the line of
// every key it meets in lines. It returns every syntax, unknown-key and type
// problem, sorted by line, and whether the TOML parsed at all. Each key is
// decoded on its own, so one bad value does not hide the next one.
func decode(file string, data []byte, c *Config, lines map[string]int) ([]*KeyError, bool) {
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		ke := &KeyError{File: file, Err: err}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			ke.Line, ke.Err = pe.Position.Line, errors.New(pe.Message)
		}
		return []*KeyError{ke}, false
	}

	var problems []*KeyError
	add := func(key string, line int, err error) {
		problems = append(problems, &KeyError{File: file, Line: line, Key: key, Err: err})
	}
	root := reflect.ValueOf(c).Elem()
	for _, name := range keysByLine(&md, top, lines, "") {
		line := lines[name]
		section, ok := fieldByTag(root, name)
		if !ok {
			add(toml.Key{name}.String(), line, unknownKey(name, ""))
			continue
		}
		var raw any
		if err := md.PrimitiveDecode(top[name], &raw); err != nil {
			add(name, line, err)
			continue
		}
		if _, ok := raw.(map[string]any); !ok {
			add(name, line, fmt.Errorf("must be a table ([%s]), not %s", name, tomlType(raw)))
			continue
		}
		var keys map[string]toml.Primitive
		if err := md.PrimitiveDecode(top[name], &keys); err != nil {
			add(name, line, err)
			continue
		}
		for _, k := range keysByLine(&md, keys, lines, name+".") {
			full := name + "." + k
			line := lines[full]
			field, ok := fieldByTag(section, k)
			if !ok {
				add(toml.Key{name, k}.String(), line, unknownKey(k, name))
				continue
			}
			var v any
			if err := md.PrimitiveDecode(keys[k], &v); err != nil {
				add(full, line, err)
				continue
			}
			if err := setField(field, v); err != nil {
				add(full, line, err)
			}
		}
	}
	return problems, true
}

// keysByLine returns the keys of m ordered by their line in the file, and
// records each line in lines under prefix+key.
func keysByLine(md *toml.MetaData, m map[string]toml.Primitive, lines map[string]int, prefix string) []string {
	keys := make([]string, 0, len(m))
	for k, p := range m {
		keys = append(keys, k)
		lines[prefix+k] = lineOf(md, p, 0)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if d := lines[prefix+a] - lines[prefix+b]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return keys
}

// lineProbe fails every decode, which makes the toml package report the
// position of the value it was asked to decode: MetaData keeps key positions
// private and this is the only way to read them.
type lineProbe struct{}

var errProbe = errors.New("line probe")

func (lineProbe) UnmarshalTOML(any) error { return errProbe }

// maxProbeDepth bounds the search for the line of an implicit table.
const maxProbeDepth = 4

// lineOf returns the line where p is defined, or 0. A table created only
// implicitly (by "a.b = 1" or "[a.b]") has no position of its own; it gets the
// first line of its contents.
func lineOf(md *toml.MetaData, p toml.Primitive, depth int) int {
	var pe toml.ParseError
	if err := md.PrimitiveDecode(p, &lineProbe{}); errors.As(err, &pe) && pe.Position.Line > 0 {
		return pe.Position.Line
	}
	if depth >= maxProbeDepth {
		return 0
	}
	var sub map[string]toml.Primitive
	if err := md.PrimitiveDecode(p, &sub); err != nil {
		return 0
	}
	first := 0
	for _, sp := range sub {
		if l := lineOf(md, sp, depth+1); l > 0 && (first == 0 || l < first) {
			first = l
		}
	}
	return first
}

// fieldByTag returns the field of struct v whose toml tag is exactly name.
// (The toml package itself matches case-insensitively; we do not.)
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if tomlName(t.Field(i)) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	logLevelType = reflect.TypeFor[LogLevel]()
)

// setField stores the decoded TOML value v in field, checking its type.
func setField(field reflect.Value, v any) error {
	if tu, ok := field.Addr().Interface().(encoding.TextUnmarshaler); ok {
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case int64:
			if field.Type() != byteSizeType {
				return wrongType(field.Type(), v)
			}
			s = fmt.Sprint(x)
		default:
			return wrongType(field.Type(), v)
		}
		return tu.UnmarshalText([]byte(s))
	}
	switch field.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return wrongType(field.Type(), v)
		}
		field.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return wrongType(field.Type(), v)
		}
		field.SetBool(b)
	case reflect.Int:
		n, ok := v.(int64)
		if !ok {
			return wrongType(field.Type(), v)
		}
		if field.OverflowInt(n) {
			return fmt.Errorf("%d is too large", n)
		}
		field.SetInt(n)
	case reflect.Float64:
		switch x := v.(type) {
		case float64:
			field.SetFloat(x)
		case int64:
			field.SetFloat(float64(x))
		default:
			return wrongType(field.Type(), v)
		}
	case reflect.Slice: // []string is the only slice in the schema
		arr, ok := v.([]any)
		if !ok {
			return wrongType(field.Type(), v)
		}
		var out []string // nil when empty, so [] and a missing key compare equal
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("entry %d must be a string, not %s", i+1, tomlType(e))
			}
			out = append(out, s)
		}
		field.Set(reflect.ValueOf(out))
	default:
		panic(fmt.Sprintf("config: no decoder for field type %s", field.Type()))
	}
	return nil
}

// wrongType describes what a field of type t wants instead of v.
func wrongType(t reflect.Type, v any) error {
	var want string
	switch t {
	case durationType:
		want = `a duration string such as "30s" or "6h"`
	case byteSizeType:
		want = `a size such as "2GiB" or an integer number of bytes`
	case logLevelType:
		want = `one of "debug", "info", "warn", "error"`
	default:
		switch t.Kind() {
		case reflect.String:
			want = "a string"
		case reflect.Bool:
			want = "true or false"
		case reflect.Int:
			want = "an integer"
		case reflect.Float64:
			want = "a number"
		case reflect.Slice:
			want = "an array of strings"
		default:
			want = t.String()
		}
	}
	return fmt.Errorf("must be %s, not %s", want, tomlType(v))
}

// tomlType names the TOML type of a decoded value for messages; it never
// includes the value itself, which may be a secret.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return fmt.Sprintf("a %T", v)
}

// unknownKey builds the error for key (in section, or top level when
// section is ""), with a suggestion when one is close.
func unknownKey(key, section string) error {
	if s := suggest(key, section); s != "" {
		return fmt.Errorf("%w (did you mean %s?)", ErrUnknownKey, s)
	}
	return ErrUnknownKey
}

// suggest returns the schema key closest to key: within section first, then
// the same name in another section (a key put in the wrong table).
func suggest(key, section string) string {
	root := reflect.TypeFor[Config]()
	lower := strings.ToLower(key)
	// Suggest a differently cased key, or one within a typo or two.
	best, bestDist := "", min(len(key)/3, 2)+1
	consider := func(candidate, full string) {
		if d := editDistance(lower, candidate); d < bestDist {
			best, bestDist = full, d
		}
	}
	for i := range root.NumField() {
		sec := root.Field(i)
		secName := tomlName(sec)
		if section == "" {
			consider(secName, "["+secName+"]")
		}
		for j := range sec.Type.NumField() {
			name := tomlName(sec.Type.Field(j))
			switch {
			case secName == section:
				consider(name, section+"."+name)
			case name == lower:
				consider(name, secName+"."+name)
			}
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b in
// bytes: insertions, deletions, substitutions and adjacent swaps ("prot" is
// one edit from "port").
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
