package config

import (
	"fmt"
	"strconv"
)

// Toggle is a boolean setting that may be left unset, so that its default
// can depend on other settings (--auth: on in a cluster, off standalone).
// Its text form is "", "true" or "false".
type Toggle string

// Get returns the value and whether it was set.
func (t Toggle) Get() (value, set bool) {
	if t == "" {
		return false, false
	}
	v, _ := strconv.ParseBool(string(t))
	return v, true
}

// String implements pflag.Value.
func (t *Toggle) String() string { return string(*t) }

// Set implements pflag.Value: any strconv.ParseBool spelling, or "" to
// unset.
func (t *Toggle) Set(s string) error {
	if s == "" {
		*t = ""
		return nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	*t = Toggle(strconv.FormatBool(v))
	return nil
}

// Type implements pflag.Value.
func (t *Toggle) Type() string { return "bool" }

// UnmarshalYAML reads true/false (or a quoted spelling) from a config file.
func (t *Toggle) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	return t.Set(s)
}
