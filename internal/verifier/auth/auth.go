// Package auth holds the caller identity that the AAS middleware attaches to a
// request, and the permission matching every service uses to authorize it.
// It does no I/O: token parsing and signature checks live in package aas.
package auth

import (
	"context"
	"fmt"
	"strings"
)

// Role is an AAS role as carried in tokens: {service, name, context}.
type Role struct {
	Service string `json:"service"`
	Name    string `json:"name"`
	Context string `json:"context,omitempty"`
}

// Permission is a set of rules a service grants, as carried in tokens.
// A rule is "resource:action:selector"; any field may be "*".
type Permission struct {
	Service string   `json:"service"`
	Context string   `json:"context,omitempty"`
	Rules   []string `json:"rules"`
}

// Claims is the verified identity of a caller.
type Claims struct {
	Subject     string       `json:"sub"`
	Roles       []Role       `json:"roles,omitempty"`
	Permissions []Permission `json:"permissions,omitempty"`
}

// Rule is a parsed permission rule.
type Rule struct{ Resource, Action, Selector string }

// ParseRule parses "resource:action:selector".
func ParseRule(s string) (Rule, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Rule{}, fmt.Errorf("permission rule %q must have the form resource:action:selector", s)
	}
	for _, p := range parts {
		if p == "" {
			return Rule{}, fmt.Errorf("permission rule %q has an empty field", s)
		}
	}
	return Rule{Resource: parts[0], Action: parts[1], Selector: parts[2]}, nil
}

func (r Rule) String() string { return r.Resource + ":" + r.Action + ":" + r.Selector }

// Covers reports whether the granted rule r allows the needed rule n.
// A "*" in a granted field matches anything; a "*" in a needed field is
// matched only by a granted "*".
func (r Rule) Covers(n Rule) bool {
	return field(r.Resource, n.Resource) && field(r.Action, n.Action) && field(r.Selector, n.Selector)
}

func field(granted, needed string) bool { return granted == "*" || granted == needed }

// Allows reports whether the claims grant the needed rule in the given
// service. Malformed granted rules grant nothing.
func (c *Claims) Allows(service string, needed Rule) bool {
	if c == nil {
		return false
	}
	for _, p := range c.Permissions {
		if p.Service != service && p.Service != "*" {
			continue
		}
		for _, s := range p.Rules {
			g, err := ParseRule(s)
			if err == nil && g.Covers(needed) {
				return true
			}
		}
	}
	return false
}

// HasRole returns the roles of the claims with the given service and name.
func (c *Claims) HasRole(service, name string) []Role {
	if c == nil {
		return nil
	}
	var out []Role
	for _, r := range c.Roles {
		if r.Service == service && r.Name == name {
			out = append(out, r)
		}
	}
	return out
}

type ctxKey struct{}

// WithClaims returns a context that carries the verified claims.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the verified claims of the request, or nil.
func FromContext(ctx context.Context) *Claims {
	c, _ := ctx.Value(ctxKey{}).(*Claims)
	return c
}
