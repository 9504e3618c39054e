package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// EnvPrefix starts the name of every environment variable that overrides a
// config key: TORRENTCLAW_<SECTION>_<KEY>, e.g. TORRENTCLAW_STREAM_PORT.
const EnvPrefix = "TORRENTCLAW_"

// Sources says, for every dotted key ("stream.port"), where its value came
// from, in words a person reads in `config show`: "default", "file line 12",
// "$TORRENTCLAW_STREAM_PORT", "--port". Keys that are absent came from the
// defaults.
type Sources map[string]string

// SourceDefault is the source of a key nobody set.
const SourceDefault = "default"

// Of returns key's source, [SourceDefault] when unrecorded.
func (s Sources) Of(key string) string {
	if v, ok := s[key]; ok {
		return v
	}
	return SourceDefault
}

// Describe names what set key for an error message: `the flag --port`,
// `$TORRENTCLAW_STREAM_PORT`, `stream.port in /etc/x.toml`, or just the key
// for a default.
func (s Sources) Describe(key string) string {
	src := s.Of(key)
	switch {
	case strings.HasPrefix(src, "--"):
		return "the flag " + src
	case strings.HasPrefix(src, "$"):
		return src
	case strings.HasPrefix(src, "file"):
		return key + " (" + src + ")"
	}
	return key
}

// Key is one config key of the schema.
type Key struct {
	Name string       // dotted, "stream.port"
	Env  string       // TORRENTCLAW_STREAM_PORT
	Type reflect.Type // the field's Go type
}

// Keys lists every key of the schema in declaration order, with the name of
// the environment variable that overrides it.
func Keys() []Key {
	var out []Key
	root := reflect.TypeFor[Config]()
	for i := range root.NumField() {
		sec := root.Field(i)
		for j := range sec.Type.NumField() {
			f := sec.Type.Field(j)
			name := tomlName(sec) + "." + tomlName(f)
			out = append(out, Key{Name: name, Env: EnvName(name), Type: f.Type})
		}
	}
	return out
}

// EnvName returns the environment variable that overrides the dotted key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// applyEnv sets every key whose variable is set in the environment (an
// empty value counts as set: it empties a string or a list), records the
// variable in sources, and returns one problem per bad value, naming the
// variable.
func applyEnv(c *Config, lookupEnv func(string) (string, bool), sources Sources) []*KeyError {
	var problems []*KeyError
	root := reflect.ValueOf(c).Elem()
	for _, k := range Keys() {
		v, ok := lookupEnv(k.Env)
		if !ok {
			continue
		}
		secName, keyName, _ := strings.Cut(k.Name, ".")
		sec, _ := fieldByTag(root, secName)
		field, _ := fieldByTag(sec, keyName)
		if err := setFromString(field, v); err != nil {
			problems = append(problems, &KeyError{File: "$" + k.Env, Key: k.Name, Err: err})
			continue
		}
		sources[k.Name] = "$" + k.Env
	}
	return problems
}

// setFromString parses an environment value into field: the same forms as
// the file's, with lists written comma-separated ("a, b").
func setFromString(field reflect.Value, s string) error {
	if tu, ok := field.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return tu.UnmarshalText([]byte(strings.TrimSpace(s)))
	}
	switch field.Kind() {
	case reflect.String:
		field.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		field.SetBool(b)
	case reflect.Int:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 0)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		field.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		field.SetFloat(f)
	case reflect.Slice: // []string
		var out []string
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
		field.Set(reflect.ValueOf(out))
	default:
		panic(fmt.Sprintf("config: no environment parser for field type %s", field.Type()))
	}
	return nil
}

// Environ returns c as environment assignments, "TORRENTCLAW_STREAM_PORT=11818",
// one per key in schema order: what `config show --env` prints for a
// container's environment. Secrets are written as they are; call
// [Config.Redacted] first for display.
func (c Config) Environ() []string {
	var out []string
	root := reflect.ValueOf(c)
	for _, k := range Keys() {
		secName, keyName, _ := strings.Cut(k.Name, ".")
		sec, _ := fieldByTag(root, secName)
		f, _ := fieldByTag(sec, keyName)
		out = append(out, k.Env+"="+envString(f))
	}
	return out
}

// envString is the inverse of [setFromString].
func envString(f reflect.Value) string {
	if m, ok := f.Interface().(encoding.TextMarshaler); ok {
		b, err := m.MarshalText()
		if err != nil {
			panic(fmt.Sprintf("config: marshal %s: %v", f.Type(), err)) // our own types never fail
		}
		return string(b)
	}
	switch f.Kind() {
	case reflect.String:
		return f.String()
	case reflect.Int:
		return strconv.FormatInt(f.Int(), 10)
	case reflect.Bool:
		return strconv.FormatBool(f.Bool())
	case reflect.Float64:
		return strconv.FormatFloat(f.Float(), 'g', -1, 64)
	case reflect.Slice: // []string
		return strings.Join(f.Interface().([]string), ",")
	}
	panic(fmt.Sprintf("config: no environment form for field type %s", f.Type()))
}
