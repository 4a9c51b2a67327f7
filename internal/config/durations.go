package config

import (
	"errors"
	"fmt"
	"time"
)

// DurationSetting is one duration of a component's Config: its name in
// errors, where it is, and the value that zero stands for.
type DurationSetting struct {
	name string
	v    *time.Duration
	def  time.Duration
}

// Duration names the duration setting at v, whose zero value means def.
func Duration(name string, v *time.Duration, def time.Duration) DurationSetting {
	return DurationSetting{name: name, v: v, def: def}
}

// DefaultDurations gives each zero setting its default and refuses each
// negative one, all in one error whose lines begin with what.
func DefaultDurations(what string, settings ...DurationSetting) error {
	var errs []error
	for _, s := range settings {
		switch {
		case *s.v < 0:
			errs = append(errs, fmt.Errorf("%s: %s must not be negative, got %s", what, s.name, *s.v))
		case *s.v == 0:
			*s.v = s.def
		}
	}
	return errors.Join(errs...)
}
