// Package configs ships the documented configuration file, whose values are
// the built-in defaults, and the demo zone.
package configs

import (
	_ "embed"
	"strings"
)

//go:embed VERSION
var version string

// Version is the release this tree is, from configs/VERSION.
var Version = strings.TrimSpace(version)

// DefaultYAML is configs/sovdns.yaml.
//
//go:embed sovdns.yaml
var DefaultYAML []byte

// DemoZone is the demo gov.az master file.
//
//go:embed demo/gov.az.zone
var DemoZone []byte

// DemoOrigin is the origin of DemoZone.
const DemoOrigin = "gov.az."
