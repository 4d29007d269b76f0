package blueprint

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Format is the syntax a blueprint is written in.
type Format int

// The blueprint formats. Both carry the same field names.
const (
	FormatTOML Format = iota + 1
	FormatJSON
)

func (f Format) String() string {
	switch f {
	case FormatTOML:
		return "TOML"
	case FormatJSON:
		return "JSON"
	default:
		return fmt.Sprintf("Format(%d)", int(f))
	}
}

// FormatFromPath picks the format from a file name's extension: ".toml" or
// ".json" (in any letter case).
func FormatFromPath(path string) (Format, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".toml":
		return FormatTOML, nil
	case ".json":
		return FormatJSON, nil
	case "":
		return 0, fmt.Errorf("%s: no file extension; name the blueprint *.toml or *.json", path)
	default:
		return 0, fmt.Errorf("%s: unknown blueprint extension %q; name the blueprint *.toml or *.json", path, ext)
	}
}
