package planner

import "strings"

// ShortID is how berth shows a Docker container or image ID to people: its
// first 12 hex digits, keeping the "sha256:" prefix of an image ID
// ("sha256:0123456789ab"). It is for display only, never for lookups.
func ShortID(id string) string {
	hex, digest := strings.CutPrefix(id, "sha256:")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	if digest {
		return "sha256:" + hex
	}
	return hex
}
