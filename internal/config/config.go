// Package config is the one configuration loader of the Trusted Compute
// binaries: a typed Config struct holding the defaults, a YAML file over it
// (unknown keys are an error), and TC_* environment variables over the file.
// Flags, where a binary has them, are applied by the binary last.
//
// A field takes its environment variable from its `env` struct tag:
//
//	type Config struct {
//		Listen string        `yaml:"listen" env:"TC_LISTEN"`
//		Poll   time.Duration `yaml:"poll"   env:"TC_POLL"`
//		Roots  []string      `yaml:"roots"  env:"TC_ROOTS"` // comma-separated
//	}
//
// Nested structs are walked; every problem is reported at once, each naming
// the file or the variable.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path (none when path is empty) into cfg, a
// pointer to a struct already holding the defaults, then applies every
// non-empty environment variable named by an `env` tag, read with getenv.
func Load(path string, getenv func(string) string, cfg any) error {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: want a pointer to a struct, got %T", cfg)
	}
	if path != "" {
		data, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the config file
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		if err := Decode(data, cfg); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
	}
	var errs []error
	walk(v.Elem(), func(f reflect.Value, key string) {
		raw := getenv(key)
		if raw == "" {
			return
		}
		if err := set(f, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	})
	return errors.Join(errs...)
}

// Decode decodes YAML into cfg, refusing keys cfg has no field for. An empty
// document changes nothing.
func Decode(data []byte, cfg any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// EnvKeys lists the environment variables cfg (a struct or a pointer to one)
// reads, in field order.
func EnvKeys(cfg any) []string {
	v := reflect.ValueOf(cfg)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var keys []string
	walk(v, func(_ reflect.Value, key string) { keys = append(keys, key) })
	return keys
}

// walk calls fn for every settable field with an env tag, depth first.
func walk(v reflect.Value, fn func(f reflect.Value, key string)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		f := v.Field(i)
		if key := sf.Tag.Get("env"); key != "" {
			fn(f, key)
			continue
		}
		if f.Kind() == reflect.Struct && sf.Type != reflect.TypeFor[time.Time]() {
			walk(f, fn)
		}
	}
}

var durationType = reflect.TypeFor[time.Duration]()

// set parses raw into f by f's kind.
func set(f reflect.Value, raw string) error {
	if f.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 0, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 0, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetUint(n)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(raw, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetFloat(x)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type %s", f.Type())
		}
		var items []string
		for s := range strings.SplitSeq(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		f.Set(reflect.ValueOf(items).Convert(f.Type()))
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}
