package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the name of every environment variable Quasipaa reads.
const EnvPrefix = "QUASIPAA_"

// EnvConfigFile names the config file when --config is not given. It is the
// one QUASIPAA_ variable that is not a config key.
const EnvConfigFile = "QUASIPAA_CONFIG"

// Key describes one leaf setting of Config.
type Key struct {
	Path string // dotted YAML path, e.g. "hub.queue_size"
	Env  string // environment variable, e.g. "QUASIPAA_HUB_QUEUE_SIZE"
	Type string // "string", "bool", "int", "duration" or "list"

	index []int // reflect field index path from Config
}

var durationType = reflect.TypeOf(time.Duration(0))

// keys is every leaf of Config in declaration order, derived from the yaml tags.
var keys = func() []Key {
	var out []Key
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			idx := append(append([]int(nil), index...), i)
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, path, idx)
				continue
			}
			if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
				out = append(out, Key{Path: path, Env: EnvName(path), Type: "list", index: idx})
				continue
			}
			typ := typeName(f.Type)
			if typ == "" {
				panic(fmt.Sprintf("config: %s has unsupported type %s", path, f.Type))
			}
			out = append(out, Key{Path: path, Env: EnvName(path), Type: typ, index: idx})
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	seen := map[string]string{}
	for _, k := range out {
		if other, dup := seen[k.Env]; dup || k.Env == EnvConfigFile {
			panic(fmt.Sprintf("config: %s and %q map to the same environment variable %s", k.Path, other, k.Env))
		}
		seen[k.Env] = k.Path
	}
	return out
}()

// ItemKeys returns the settings of one entry of the list key listPath
// ("apps" → "apps[].match", …); they have no environment variable of their
// own: the whole list is set at once by the list's variable.
func ItemKeys(listPath string) []Key {
	for _, k := range keys {
		if k.Path != listPath || k.Type != "list" {
			continue
		}
		t := reflect.TypeOf(Config{}).FieldByIndex(k.index).Type.Elem()
		var out []Key
		for i := 0; i < t.NumField(); i++ {
			if name := yamlName(t.Field(i)); name != "" {
				out = append(out, Key{Path: listPath + "[]." + name, Type: typeName(t.Field(i).Type), index: []int{i}})
			}
		}
		return out
	}
	return nil
}

// Keys returns every leaf setting of Config with its environment variable.
func Keys() []Key {
	return append([]Key(nil), keys...)
}

// EnvName returns the environment variable for a dotted key path:
// "hub.publisher_grace" → "QUASIPAA_HUB_PUBLISHER_GRACE".
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if tag == "-" {
		return ""
	}
	if tag == "" {
		return strings.ToLower(f.Name)
	}
	return tag
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() == reflect.Int:
		return "int"
	}
	return ""
}

// Load returns Default() overlaid with the YAML file at path (skipped when
// path is "") and then with the QUASIPAA_* variables of environ (in
// os.Environ form), validated. Unknown file keys and unknown QUASIPAA_
// variables are errors; every error names the key.
func Load(path string, environ []string) (*Config, error) {
	cfg := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		err = cfg.decodeYAML(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := cfg.applyEnv(environ); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// decodeYAML overlays one YAML document onto c. Keys missing from the
// document keep their current value; a section left empty ("hub:" with
// nothing under it) keeps all its values.
//
// It walks the yaml.Node tree itself rather than relying on
// Decoder.KnownFields, so that every error carries the full key path
// ("rtmp.listn: unknown key") and not only a Go type name.
func (c *Config) decodeYAML(r io.Reader) error {
	dec := yaml.NewDecoder(r)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: defaults
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("holds more than one YAML document; use a single one")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	return decodeMapping(reflect.ValueOf(c).Elem(), root, "")
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "something else"
}

func decodeMapping(v reflect.Value, n *yaml.Node, prefix string) error {
	n = resolveAlias(n)
	where := prefix
	if where == "" {
		where = "top level"
	}
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: line %d: expected a mapping of keys (%s), got %s",
			where, n.Line, strings.Join(fieldNames(v.Type()), ", "), kindName(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := resolveAlias(n.Content[i]), resolveAlias(n.Content[i+1])
		name := kn.Value
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		if line, dup := seen[name]; dup {
			return fmt.Errorf("%s: line %d: key given twice (first on line %d)", path, kn.Line, line)
		}
		seen[name] = kn.Line
		field, ok := fieldByYAML(v, name)
		if !ok {
			names := fieldNames(v.Type())
			hint := ""
			if s := closest(name, names, 3); s != "" {
				hint = fmt.Sprintf("did you mean %q? ", s)
			}
			in := ""
			if prefix != "" {
				in = " in " + prefix
			}
			return fmt.Errorf("%s: unknown key (line %d; %svalid keys%s: %s)",
				path, kn.Line, hint, in, strings.Join(names, ", "))
		}
		if field.Kind() == reflect.Struct && field.Type() != durationType {
			if err := decodeMapping(field, vn, path); err != nil {
				return err
			}
			continue
		}
		if field.Kind() == reflect.Slice {
			if err := decodeList(field, vn, path); err != nil {
				return err
			}
			continue
		}
		if isNull(vn) {
			return fmt.Errorf(`%s: line %d: no value; write "" for an empty string or remove the key to keep the default`, path, vn.Line)
		}
		if vn.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s: line %d: expected a single value, got %s", path, vn.Line, kindName(vn))
		}
		if err := setValue(field, vn.Value); err != nil {
			return fmt.Errorf("%s: line %d: %w", path, vn.Line, err)
		}
	}
	return nil
}

// decodeList replaces the list field v with the entries of the sequence n;
// each entry starts from its type's defaults (see itemDefaults).
func decodeList(v reflect.Value, n *yaml.Node, path string) error {
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("%s: line %d: expected a list of entries, got %s", path, n.Line, kindName(n))
	}
	if len(n.Content) > maxListLen {
		return fmt.Errorf("%s: line %d: %d entries, at most %d", path, n.Line, len(n.Content), maxListLen)
	}
	if len(n.Content) == 0 {
		v.Set(reflect.Zero(v.Type()))
		return nil
	}
	list := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		elem := list.Index(i)
		elem.Set(itemDefaults(v.Type().Elem()))
		if err := decodeMapping(elem, item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	v.Set(list)
	return nil
}

// maxListLen bounds a list key before validation sees it.
const maxListLen = 10000

// itemDefaults returns the starting value of a new list entry of type t.
func itemDefaults(t reflect.Type) reflect.Value {
	if t == reflect.TypeOf(App{}) {
		return reflect.ValueOf(DefaultApp())
	}
	return reflect.Zero(t)
}

func fieldByYAML(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if yamlName(t.Field(i)) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if n := yamlName(t.Field(i)); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// setValue parses s into the leaf field v. The same rules serve YAML
// scalars and environment variables.
func setValue(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("invalid boolean %q: use true or false", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
		if err != nil || v.OverflowInt(n) {
			return fmt.Errorf("invalid integer %q", s)
		}
		v.SetInt(n)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf(`invalid duration %q: use a number with a unit, like "500ms", "5s" or "1m"`, s)
	}
	return d, nil
}

// applyEnv overlays the QUASIPAA_* variables of environ onto c. Variables
// without the prefix are ignored; QUASIPAA_CONFIG is left to the caller.
func (c *Config) applyEnv(environ []string) error {
	byEnv := make(map[string]Key, len(keys))
	for _, k := range keys {
		byEnv[k.Env] = k
	}
	root := reflect.ValueOf(c).Elem()
	var unknown []string
	var errs []error
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || name == EnvConfigFile {
			continue
		}
		k, ok := byEnv[name]
		if !ok {
			msg := name
			if s := suggestEnv(name); s != "" {
				msg += " (did you mean " + s + "?)"
			}
			unknown = append(unknown, msg)
			continue
		}
		if k.Type == "list" {
			if err := setListFromYAML(root.FieldByIndex(k.index), value, k.Path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			continue
		}
		if err := setValue(root.FieldByIndex(k.index), value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", k.Path, name, err))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		noun := "variable"
		if len(unknown) > 1 {
			noun = "variables"
		}
		errs = append([]error{fmt.Errorf("unknown %s %s: no such config key (a key like hub.queue_size is set by QUASIPAA_HUB_QUEUE_SIZE; docs/config.md lists them all)",
			noun, strings.Join(unknown, ", "))}, errs...)
	}
	return errors.Join(errs...)
}

// setListFromYAML sets a list key from a YAML (or JSON) flow value such as
// [{match: "live/*", record: true}].
func setListFromYAML(v reflect.Value, value, path string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		return fmt.Errorf("%s: not a YAML/JSON list: %w", path, err)
	}
	if len(doc.Content) == 0 {
		v.Set(reflect.Zero(v.Type()))
		return nil
	}
	return decodeList(v, resolveAlias(doc.Content[0]), path)
}

// suggestEnv returns the known variable closest to name, if close enough.
func suggestEnv(name string) string {
	envs := make([]string, len(keys))
	for i, k := range keys {
		envs[i] = k.Env
	}
	return closest(name, envs, 3)
}

// closest returns the candidate nearest to s within maxDist edits, or "".
func closest(s string, candidates []string, maxDist int) string {
	best, bestD := "", maxDist+1
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
