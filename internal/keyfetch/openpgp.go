package keyfetch

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

const (
	armorBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
	armorEnd   = "-----END PGP PUBLIC KEY BLOCK-----"
)

// OpenPGP packet tags (RFC 4880, section 4.3) that decide what a key
// file holds.
const (
	tagSecretKey    = 5
	tagPublicKey    = 6
	tagSecretSubkey = 7
)

// Normalize checks that data is an OpenPGP public key, as one or more
// ASCII-armored public key blocks or as binary packets, and returns it as
// one armored block.
func Normalize(data []byte) (string, error) {
	var packets []byte
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		var err error
		if packets, err = dearmorAll(string(data)); err != nil {
			return "", err
		}
	} else {
		packets = data
	}
	if err := checkPackets(packets); err != nil {
		return "", err
	}
	return Armor(packets), nil
}

// Merge joins armored public keys into one armored block (a keyring is
// its keys' packets one after the other), which apt takes inline in a
// Signed-By field where it takes only one block.
func Merge(keys []string) (string, error) {
	var packets []byte
	for i, k := range keys {
		p, err := dearmorAll(k)
		if err == nil {
			err = checkPackets(p)
		}
		if err != nil {
			return "", fmt.Errorf("key %d: %w", i+1, err)
		}
		packets = append(packets, p...)
	}
	return Armor(packets), nil
}

// Armor encodes OpenPGP packets as an ASCII-armored public key block with
// its CRC-24 checksum.
func Armor(packets []byte) string {
	var b strings.Builder
	b.WriteString(armorBegin + "\n\n")
	text := base64.StdEncoding.EncodeToString(packets)
	for len(text) > 64 {
		b.WriteString(text[:64] + "\n")
		text = text[64:]
	}
	if text != "" {
		b.WriteString(text + "\n")
	}
	c := crc24(packets)
	b.WriteString("=" + base64.StdEncoding.EncodeToString([]byte{byte(c >> 16), byte(c >> 8), byte(c)}) + "\n")
	b.WriteString(armorEnd + "\n")
	return b.String()
}

// dearmorAll decodes every armored public key block of text and returns
// their packets, one after the other.
func dearmorAll(text string) ([]byte, error) {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if strings.Contains(text, "PRIVATE KEY BLOCK") {
		return nil, errors.New("holds a private key block: give the public key, and treat the private key as leaked")
	}
	var out []byte
	blocks := 0
	for {
		start := strings.Index(text, armorBegin)
		if start < 0 {
			break
		}
		rest := text[start+len(armorBegin):]
		end := strings.Index(rest, armorEnd)
		if end < 0 {
			return nil, errors.New("has an armored key block without its end line " + armorEnd)
		}
		p, err := dearmorBody(rest[:end])
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
		text = rest[end+len(armorEnd):]
		blocks++
	}
	if blocks == 0 {
		return nil, errNotKey
	}
	return out, nil
}

// dearmorBody decodes the lines between the begin and end lines of an
// armored block: optional headers, a blank line, base64 data and an
// optional "=" checksum line.
func dearmorBody(body string) ([]byte, error) {
	lines := strings.Split(strings.TrimSpace(body), "\n")
	var data strings.Builder
	var sum string
	inHeaders := true
	for _, line := range lines {
		line = strings.TrimSpace(line)
		switch {
		case inHeaders && strings.Contains(line, ": "):
			continue
		case line == "":
			inHeaders = false
			continue
		case strings.HasPrefix(line, "=") && len(line) == 5:
			sum = line[1:]
			continue
		}
		inHeaders = false
		data.WriteString(line)
	}
	packets, err := base64.StdEncoding.DecodeString(data.String())
	if err != nil {
		return nil, errors.New("has an armored key block whose data is not base64")
	}
	if sum != "" {
		want, err := base64.StdEncoding.DecodeString(sum)
		c := crc24(packets)
		if err != nil || len(want) != 3 || !bytes.Equal(want, []byte{byte(c >> 16), byte(c >> 8), byte(c)}) {
			return nil, errors.New("has an armored key block whose checksum does not match its data: the key is damaged")
		}
	}
	return packets, nil
}

// checkPackets walks the OpenPGP packet headers of data: they must cover
// it exactly, start with a public key packet and hold no secret key.
func checkPackets(data []byte) error {
	if len(data) == 0 {
		return errNotKey
	}
	for i, first := 0, true; i < len(data); first = false {
		tag, n, err := packetHeader(data[i:])
		if err != nil {
			if first {
				return errNotKey
			}
			return fmt.Errorf("is a damaged OpenPGP key: %w", err)
		}
		switch {
		case tag == tagSecretKey || tag == tagSecretSubkey:
			return errors.New("holds a secret key: give the public key, and treat the secret key as leaked")
		case first && tag != tagPublicKey:
			return errNotKey
		}
		i += n
	}
	return nil
}

// packetHeader reads the packet at the start of data and returns its tag
// and its whole length, header included.
func packetHeader(data []byte) (tag int, total int, err error) {
	b := data[0]
	if b&0x80 == 0 {
		return 0, 0, errors.New("a packet header lacks its marker bit")
	}
	var hdr, body int
	if b&0x40 != 0 { // new format
		tag = int(b & 0x3f)
		if len(data) < 2 {
			return 0, 0, errors.New("a packet header is cut off")
		}
		switch o := int(data[1]); {
		case o < 192:
			hdr, body = 2, o
		case o < 224:
			if len(data) < 3 {
				return 0, 0, errors.New("a packet header is cut off")
			}
			hdr, body = 3, (o-192)<<8+int(data[2])+192
		case o == 255:
			if len(data) < 6 {
				return 0, 0, errors.New("a packet header is cut off")
			}
			hdr, body = 6, int(data[2])<<24|int(data[3])<<16|int(data[4])<<8|int(data[5])
		default:
			return 0, 0, errors.New("a packet has a partial length, which key packets never have")
		}
	} else { // old format
		tag = int(b>>2) & 0x0f
		size := []int{1, 2, 4}
		lt := int(b & 3)
		if lt == 3 {
			return 0, 0, errors.New("a packet has an indeterminate length")
		}
		hdr = 1 + size[lt]
		if len(data) < hdr {
			return 0, 0, errors.New("a packet header is cut off")
		}
		for _, c := range data[1:hdr] {
			body = body<<8 | int(c)
		}
	}
	if body < 0 || hdr+body > len(data) {
		return 0, 0, errors.New("a packet is cut off")
	}
	return tag, hdr + body, nil
}

// crc24 is the checksum of ASCII armor (RFC 4880, section 6.1).
func crc24(data []byte) uint32 {
	crc := uint32(0xB704CE)
	for _, b := range data {
		crc ^= uint32(b) << 16
		for range 8 {
			crc <<= 1
			if crc&0x1000000 != 0 {
				crc ^= 0x1864CFB
			}
		}
	}
	return crc & 0xFFFFFF
}
