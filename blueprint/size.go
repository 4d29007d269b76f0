package blueprint

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size is a number of bytes. In blueprints it is written as an integer of
// bytes (1073741824) or a string with a unit ("1 GiB", "512MiB", "2 GB").
type Size uint64

// Common sizes.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

var sizeUnits = map[string]uint64{
	"": 1, "b": 1,
	"kb": 1000, "mb": 1000 * 1000, "gb": 1000 * 1000 * 1000, "tb": 1000 * 1000 * 1000 * 1000,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseSize reads "20 GiB", "512MiB", "1000000" or "2 GB".
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size (expected bytes or a number with a unit, e.g. \"20 GiB\")", s)
	}
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	unit := strings.ToLower(strings.TrimSpace(t[i:]))
	mul, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB)", s, strings.TrimSpace(t[i:]))
	}
	if n != 0 && mul > math.MaxUint64/n {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	return Size(n * mul), nil
}

// String prints the size in the largest binary unit that divides it exactly.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		v    Size
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if s != 0 && s%u.v == 0 {
			return fmt.Sprintf("%d %s", s/u.v, u.name)
		}
	}
	return fmt.Sprintf("%d B", uint64(s))
}

// Bytes returns the size as a plain number of bytes.
func (s Size) Bytes() uint64 { return uint64(s) }
