package disk

import (
	"fmt"
	"math/rand/v2"
)

// IDs hands out identifiers from a seeded generator: the same seed gives the
// same identifiers in the same order.
type IDs struct {
	rng *rand.Rand
}

// NewIDs returns a generator seeded with seed.
func NewIDs(seed uint64) *IDs {
	var key [32]byte
	for i := 0; i < 8; i++ {
		key[i] = byte(seed >> (8 * i))
	}
	copy(key[8:], "kiln disk identifiers...")
	return &IDs{rng: rand.New(rand.NewChaCha8(key))}
}

// UUID returns a random (version 4) UUID in canonical lower-case form.
func (g *IDs) UUID() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := g.rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// VolumeID returns a FAT volume serial number ("ABCD-1234").
func (g *IDs) VolumeID() string {
	v := g.rng.Uint32()
	return fmt.Sprintf("%04X-%04X", v>>16, v&0xffff)
}

// DiskID returns a DOS disk identifier (8 hex digits).
func (g *IDs) DiskID() string {
	return fmt.Sprintf("%08x", g.rng.Uint32())
}
