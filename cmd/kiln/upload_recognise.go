package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/target"
)

// recognisedTypes are the kiln image types a recognised file is taken
// for, by format: the type whose output it is.
var recognisedTypes = map[string]string{
	distro.FormatRaw:     "raw",
	distro.FormatQcow2:   "qcow2",
	distro.FormatVHD:     "vhd",
	distro.FormatDiskTar: "gce",
	distro.FormatOCI:     "container",
	distro.FormatTar:     "tar",
	distro.FormatISO:     "live-iso",
	distro.FormatOVA:     "ova",
}

// recogniseImage tells what an image file is from its bytes, for an image
// without its manifest: its format and compression, and for a disk how it
// boots, from its partition table. The architecture cannot be told. The
// error says what could not be told.
func recogniseImage(path string) (target.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return target.Image{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return target.Image{}, err
	}
	head := make([]byte, 64<<10)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return target.Image{}, err
	}
	head = head[:n]
	img := target.Image{BootMode: distro.BootNone}
	var disk func() ([]byte, error) // the first bytes of the disk the file holds
	switch {
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		img.Format = distro.FormatQcow2
		disk = func() ([]byte, error) { return qcow2FirstCluster(f) }
	case isFixedVHD(f, fi.Size()):
		img.Format = distro.FormatVHD
		disk = func() ([]byte, error) { return head, nil }
	case bytes.HasPrefix(head, []byte("conectix")):
		return img, errors.New("it is a dynamic VHD, which clouds do not import: convert it to a fixed one (qemu-img convert -O vpc -o subformat=fixed)")
	case bytes.HasPrefix(head, []byte("KDMV")):
		return img, errors.New("it is a VMDK, and how it boots cannot be told from its grains")
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		img.Compression = "gzip"
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return img, err
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			return img, fmt.Errorf("it is gzip-compressed but cannot be read: %w", err)
		}
		format, first, err := tarContents(zr)
		if err != nil {
			return img, fmt.Errorf("it is gzip-compressed but holds no tar archive that can be read (%w)", err)
		}
		img.Format = format
		switch format {
		case distro.FormatDiskTar:
			disk = func() ([]byte, error) { return first, nil }
		case distro.FormatOVA:
			return ovaImage(img, first)
		}
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")), bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		img.Compression = "xz"
		if head[0] == 0x28 {
			img.Compression = "zstd"
		}
		switch {
		case strings.Contains(path, ".tar."):
			img.Format = distro.FormatTar
		case strings.Contains(path, ".raw."):
			return img, fmt.Errorf("it is a %s-compressed raw disk, and how it boots cannot be told without unpacking it", img.Compression)
		default:
			return img, fmt.Errorf("it is %s-compressed, and whether it holds a tar archive or a disk cannot be told from its name", img.Compression)
		}
	case isTar(head):
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return img, err
		}
		format, first, err := tarContents(f)
		if err != nil {
			return img, fmt.Errorf("it looks like a tar archive but cannot be read (%w)", err)
		}
		img.Format = format
		switch format {
		case distro.FormatDiskTar:
			disk = func() ([]byte, error) { return first, nil }
		case distro.FormatOVA:
			return ovaImage(img, first)
		}
	case isISO(f):
		img.Format = distro.FormatISO
	case len(head) >= 512 && head[510] == 0x55 && head[511] == 0xaa:
		img.Format = distro.FormatRaw
		disk = func() ([]byte, error) { return head, nil }
	default:
		return img, errors.New("what it is cannot be told: it is not a qcow2, a VHD, a tar archive (plain or gzip), an OCI archive, an OVA, an ISO or a raw disk with a partition table")
	}
	img.Type = recognisedTypes[img.Format]
	if disk == nil {
		return img, nil
	}
	first, err := disk()
	if err != nil {
		return img, fmt.Errorf("it is a %s, but its first sectors cannot be read (%w), so how it boots cannot be told", img.Format, err)
	}
	boot, err := bootModeOf(first)
	if err != nil {
		return img, fmt.Errorf("it is a %s, but how it boots cannot be told: %w", img.Format, err)
	}
	img.BootMode = boot
	return img, nil
}

// ovaImage tells how an OVA boots from its descriptor's firmware setting
// (vSphere's, which kiln writes).
func ovaImage(img target.Image, ovf []byte) (target.Image, error) {
	img.Type = recognisedTypes[img.Format]
	switch {
	case bytes.Contains(ovf, []byte(`vmw:key="firmware" vmw:value="efi"`)):
		img.BootMode = distro.BootUEFI
	case bytes.Contains(ovf, []byte(`vmw:key="firmware" vmw:value="bios"`)):
		img.BootMode = distro.BootBIOS
	default:
		return img, errors.New("it is an OVA whose descriptor names no firmware, so how it boots cannot be told")
	}
	return img, nil
}

// isFixedVHD reports whether the file ends with a VHD footer of a fixed
// disk (cookie "conectix", disk type 2), the only kind clouds import.
func isFixedVHD(f *os.File, size int64) bool {
	if size < 512 {
		return false
	}
	footer := make([]byte, 512)
	if _, err := f.ReadAt(footer, size-512); err != nil {
		return false
	}
	return bytes.HasPrefix(footer, []byte("conectix")) && binary.BigEndian.Uint32(footer[60:]) == 2
}

func isTar(head []byte) bool {
	return len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar"))
}

// isISO reports whether the file has an ISO 9660 primary volume
// descriptor.
func isISO(f *os.File) bool {
	id := make([]byte, 5)
	if _, err := f.ReadAt(id, 0x8001); err != nil {
		return false
	}
	return string(id) == "CD001"
}

// tarContents tells an OCI archive (oci-layout and index.json), an OVA
// (its descriptor first), a disk in a tar (disk.raw, as GCE takes; its
// first 64 KiB are returned, as are the OVA descriptor's) and a root tree
// apart.
func tarContents(r io.Reader) (format string, head []byte, err error) {
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	for i := 0; ; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, err
		}
		name := strings.TrimPrefix(h.Name, "./")
		seen[name] = true
		if name == "disk.raw" || (i == 0 && strings.HasSuffix(name, ".ovf")) {
			head := make([]byte, 64<<10)
			n, err := io.ReadFull(tr, head)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				return "", nil, err
			}
			if name != "disk.raw" {
				return distro.FormatOVA, head[:n], nil // the descriptor comes first
			}
			return distro.FormatDiskTar, head[:n], nil
		}
		if seen["oci-layout"] && seen["index.json"] {
			return distro.FormatOCI, nil, nil
		}
		if i > 64 && !seen["oci-layout"] {
			break // a root tree: its first entries are directories
		}
	}
	return distro.FormatTar, nil, nil
}

// qcow2FirstCluster reads the first cluster of a qcow2's disk through its
// L1 and L2 tables: 64 KiB, which holds the partition table.
func qcow2FirstCluster(f *os.File) ([]byte, error) {
	hdr := make([]byte, 48)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, err
	}
	clusterBits := binary.BigEndian.Uint32(hdr[20:])
	if clusterBits < 9 || clusterBits > 21 {
		return nil, fmt.Errorf("qcow2 cluster size 2^%d is out of range", clusterBits)
	}
	if binary.BigEndian.Uint32(hdr[36:]) == 0 { // l1_size
		return make([]byte, 1<<clusterBits), nil
	}
	const offsetMask = 0x00fffffffffffe00
	const compressed = 1 << 62
	entry := make([]byte, 8)
	if _, err := f.ReadAt(entry, int64(binary.BigEndian.Uint64(hdr[40:]))); err != nil {
		return nil, err
	}
	l2 := binary.BigEndian.Uint64(entry) & offsetMask
	if l2 == 0 {
		return make([]byte, 1<<clusterBits), nil // unallocated: zeros
	}
	if _, err := f.ReadAt(entry, int64(l2)); err != nil {
		return nil, err
	}
	e := binary.BigEndian.Uint64(entry)
	if e&compressed != 0 {
		return nil, errors.New("its first cluster is compressed")
	}
	data := make([]byte, 1<<clusterBits)
	if off := e & offsetMask; off != 0 {
		if _, err := f.ReadAt(data, int64(off)); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
	return data, nil
}

// Partition type GUIDs as they are stored on disk (the first three fields
// little-endian).
var (
	espGUID      = guidBytes(0xC12A7328, 0xF81F, 0x11D2, [8]byte{0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B})
	biosBootGUID = guidBytes(0x21686148, 0x6449, 0x6E6F, [8]byte{0x74, 0x4E, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49})
)

func guidBytes(a uint32, b, c uint16, d [8]byte) []byte {
	out := make([]byte, 16)
	binary.LittleEndian.PutUint32(out, a)
	binary.LittleEndian.PutUint16(out[4:], b)
	binary.LittleEndian.PutUint16(out[6:], c)
	copy(out[8:], d[:])
	return out
}

// bootModeOf tells how a disk boots from its first sectors (512-byte
// sectors): a GPT with an EFI system partition boots with UEFI, with a
// BIOS boot partition with BIOS, with both either way; an MBR with boot
// code and an active partition boots with BIOS, one with an EFI system
// partition (type 0xEF) with UEFI.
func bootModeOf(disk []byte) (string, error) {
	if len(disk) < 1024 || disk[510] != 0x55 || disk[511] != 0xaa {
		return "", errors.New("it has no partition table")
	}
	mbr := disk[446:510]
	if mbr[4] == 0xee { // protective MBR: a GPT follows
		gpt := disk[512:]
		if !bytes.HasPrefix(gpt, []byte("EFI PART")) {
			return "", errors.New("its protective MBR is not followed by a GPT header")
		}
		start := int(binary.LittleEndian.Uint64(gpt[72:])) * 512
		count := int(binary.LittleEndian.Uint32(gpt[80:]))
		size := int(binary.LittleEndian.Uint32(gpt[84:]))
		if size < 128 || count > 1024 {
			return "", errors.New("its GPT header is malformed")
		}
		var esp, bios bool
		for i := 0; i < count; i++ {
			off := start + i*size
			if off+16 > len(disk) {
				return "", errors.New("its GPT partition entries lie beyond what was read")
			}
			t := disk[off : off+16]
			esp = esp || bytes.Equal(t, espGUID)
			bios = bios || bytes.Equal(t, biosBootGUID)
		}
		return bootFrom(esp, bios), nil
	}
	var esp, active bool
	for i := 0; i < 4; i++ {
		p := mbr[i*16 : i*16+16]
		esp = esp || p[4] == 0xef
		active = active || p[0] == 0x80
	}
	code := bytes.ContainsFunc(disk[:440], func(r rune) bool { return r != 0 })
	return bootFrom(esp, active && code), nil
}

func bootFrom(uefi, bios bool) string {
	switch {
	case uefi && bios:
		return distro.BootHybrid
	case uefi:
		return distro.BootUEFI
	case bios:
		return distro.BootBIOS
	}
	return distro.BootNone
}
