package stages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/manifest"
)

// QemuImgConvert converts the input disk image with qemu-img. The input's
// format is detected from its first bytes (qcow2, else raw) rather than left
// to qemu-img's probing, which refuses to write to probed raw images.
type QemuImgConvert struct{ Opts manifest.QemuImgConvert }

// qemuFormats lists the output formats and the subformats each accepts.
var qemuFormats = map[string][]string{
	"qcow2": nil,
	"raw":   nil,
	"vmdk":  {"monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat", "streamOptimized"},
	"vpc":   {"dynamic", "fixed"},
	"vhdx":  {"dynamic", "fixed"},
}

// Validate implements Stage.
func (s *QemuImgConvert) Validate() error {
	if _, err := s.formatOptions(); err != nil {
		return fmt.Errorf("qemu-img convert: %w", err)
	}
	return nil
}

// Run implements Stage.
func (s *QemuImgConvert) Run(ctx context.Context, env *Env) (err error) {
	argv, err := s.argv(env.Input, env.Output)
	if err != nil {
		return fmt.Errorf("qemu-img convert: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(env.Output)
		}
	}()
	env.Logf("converting the disk image to %s", s.Opts.Format)
	if err := runTool(ctx, env, nil, nil, argv...); err != nil {
		return fmt.Errorf("converting the disk image to %s: %w", s.Opts.Format, err)
	}
	if env.Epoch.IsZero() {
		return nil
	}
	switch s.Opts.Format {
	case "vpc":
		err = fixVHDFooters(env.Output, env.Epoch)
	case "vmdk":
		err = fixVMDKCID(env.Output, env.Epoch)
	}
	if err != nil {
		return fmt.Errorf("qemu-img convert: making the %s reproducible: %w", s.Opts.Format, err)
	}
	return nil
}

func (s *QemuImgConvert) argv(input, output string) ([]string, error) {
	o := s.Opts
	opts, err := s.formatOptions()
	if err != nil {
		return nil, err
	}
	inFormat, err := probeFormat(input)
	if err != nil {
		return nil, err
	}
	argv := []string{"qemu-img", "convert", "-f", inFormat, "-O", o.Format}
	if len(opts) > 0 {
		argv = append(argv, "-o", strings.Join(opts, ","))
	}
	if o.Compress {
		argv = append(argv, "-c")
	}
	return append(argv, input, output), nil
}

// formatOptions checks the options and returns the output format's
// options for qemu-img's -o.
func (s *QemuImgConvert) formatOptions() ([]string, error) {
	o := s.Opts
	subformats, ok := qemuFormats[o.Format]
	if !ok {
		return nil, fmt.Errorf("format %q is not supported: use qcow2, vmdk, vpc, vhdx or raw", o.Format)
	}
	var opts []string
	switch {
	case o.Compat == "":
	case o.Format != "qcow2":
		return nil, fmt.Errorf("compat %q applies to qcow2 only, not %s", o.Compat, o.Format)
	case o.Compat == "0.10" || o.Compat == "1.1":
		opts = append(opts, "compat="+o.Compat)
	default:
		return nil, fmt.Errorf("qcow2 compat %q is not known: use 0.10 or 1.1", o.Compat)
	}
	if o.Subformat != "" {
		if !slices.Contains(subformats, o.Subformat) {
			return nil, fmt.Errorf("subformat %q is not one of %s's: %s", o.Subformat, o.Format, strings.Join(subformats, ", "))
		}
		opts = append(opts, "subformat="+o.Subformat)
	}
	if o.Format == "vpc" {
		// Keep the exact size instead of rounding to a CHS geometry, as
		// clouds that take VHDs require.
		opts = append(opts, "force_size=on")
	}
	if o.Compress && o.Format != "qcow2" && o.Format != "vmdk" {
		return nil, fmt.Errorf("compression applies to qcow2 and vmdk only, not %s", o.Format)
	}
	return opts, nil
}

// probeFormat tells qcow2 from raw by the qcow2 magic.
func probeFormat(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("opening the input image: %w", err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if n, _ := f.ReadAt(magic, 0); n == 4 && string(magic) == "QFI\xfb" {
		return "qcow2", nil
	}
	return "raw", nil
}

// VHD footer fields (Virtual Hard Disk Image Format Specification).
const (
	vhdFooterSize   = 512
	vhdTimestamp    = 24 // seconds since 2000-01-01 00:00:00 UTC, big-endian
	vhdChecksum     = 64 // one's complement of the sum of the other bytes
	vhdUUID         = 68 // 16 bytes
	vhdSavedState   = 84
	vhdEpochSeconds = 946684800
)

// fixVHDFooters makes a VHD depend on its contents and the build's epoch
// only: qemu-img's vpc driver writes the current time and a random UUID
// into the footer (at the end, and its copy at the start of a dynamic
// VHD). The time becomes the epoch and the UUID one derived from the rest
// of the footer (size, geometry, type, time); the checksum is recomputed.
func fixVHDFooters(file string, epoch time.Time) error {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < vhdFooterSize {
		return errors.New("the VHD is shorter than its footer")
	}
	offsets := []int64{fi.Size() - vhdFooterSize}
	head := make([]byte, 8)
	if _, err := f.ReadAt(head, 0); err == nil && string(head) == "conectix" && fi.Size() > vhdFooterSize {
		offsets = append(offsets, 0) // a dynamic VHD's copy of the footer
	}
	for _, off := range offsets {
		footer := make([]byte, vhdFooterSize)
		if _, err := f.ReadAt(footer, off); err != nil {
			return err
		}
		if err := fixVHDFooter(footer, epoch); err != nil {
			return fmt.Errorf("the footer at byte %d: %w", off, err)
		}
		if _, err := f.WriteAt(footer, off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// fixVHDFooter sets the time, UUID and checksum of one footer.
func fixVHDFooter(footer []byte, epoch time.Time) error {
	if len(footer) != vhdFooterSize || string(footer[:8]) != "conectix" {
		return errors.New("no VHD footer (no conectix cookie)")
	}
	if got, want := binary.BigEndian.Uint32(footer[vhdChecksum:]), vhdFooterChecksum(footer); got != want {
		return fmt.Errorf("the footer's checksum is %#x, not %#x", got, want)
	}
	secs := epoch.Unix() - vhdEpochSeconds
	if secs < 0 || secs > 1<<32-1 {
		return fmt.Errorf("the epoch %s cannot be written as a VHD time", epoch.UTC())
	}
	binary.BigEndian.PutUint32(footer[vhdTimestamp:], uint32(secs))
	clear(footer[vhdUUID : vhdUUID+16])
	binary.BigEndian.PutUint32(footer[vhdChecksum:], 0)
	sum := sha256.Sum256(footer)
	id := footer[vhdUUID : vhdUUID+16]
	copy(id, sum[:16])
	id[6] = id[6]&0x0f | 0x50 // a name-based UUID (version 5 layout)
	id[8] = id[8]&0x3f | 0x80
	binary.BigEndian.PutUint32(footer[vhdChecksum:], vhdFooterChecksum(footer))
	return nil
}

func vhdFooterChecksum(footer []byte) uint32 {
	var sum uint32
	for i, b := range footer {
		if i >= vhdChecksum && i < vhdChecksum+4 {
			continue
		}
		sum += uint32(b)
	}
	return ^sum
}

// qemu-img writes the CID with %x, so it has one to eight digits.
var vmdkCIDRE = regexp.MustCompile(`(?m)^CID=[0-9a-fA-F]{1,8}$`)

// vmdkCID is the content ID written instead of qemu-img's random one: a
// function of the epoch. The CID only ties a child disk to its parent, and
// these disks have none (parentCID=ffffffff).
func vmdkCID(epoch time.Time) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "kiln vmdk %d", epoch.Unix())
	return fmt.Sprintf("%08x", h.Sum32())
}

// fixVMDKCID replaces the random CID in a VMDK's descriptor, embedded in
// a sparse VMDK (monolithicSparse, streamOptimized) or the file itself
// for the flat subformats, with vmdkCID's. The descriptor keeps its length.
func fixVMDKCID(file string, epoch time.Time) error {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var off, size int64
	hdr := make([]byte, 44)
	if _, err := f.ReadAt(hdr, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	switch {
	case string(hdr[:4]) == "KDMV":
		off = int64(binary.LittleEndian.Uint64(hdr[28:])) * 512
		size = int64(binary.LittleEndian.Uint64(hdr[36:])) * 512
		if off == 0 || size == 0 || size > 1<<20 {
			return errors.New("the VMDK header names no embedded descriptor")
		}
	case bytes.HasPrefix(hdr, []byte("# Disk DescriptorFile")):
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if size = fi.Size(); size > 1<<20 {
			return errors.New("the VMDK descriptor file is larger than 1 MiB")
		}
	default:
		return errors.New("not a VMDK (no KDMV magic or descriptor)")
	}
	desc := make([]byte, size)
	if _, err := f.ReadAt(desc, off); err != nil {
		return fmt.Errorf("reading the descriptor: %w", err)
	}
	loc := vmdkCIDRE.FindIndex(desc)
	if loc == nil {
		return errors.New("the descriptor has no CID line")
	}
	// The random CID may be shorter than the fixed one, so the text after
	// it moves: the descriptor is written again whole. An embedded one
	// sits in a zero-padded area of fixed size; a descriptor file is cut
	// to its new length. The text ends at the first NUL: when qemu-img
	// itself rewrites an embedded descriptor with a shorter CID, it writes
	// the whole area back, and the old text's tail stays after the NUL.
	text := desc
	if end := bytes.IndexByte(desc, 0); end >= 0 {
		text = desc[:end]
	}
	fixed := append(append(append([]byte{}, text[:loc[0]]...), "CID="+vmdkCID(epoch)...), text[loc[1]:]...)
	if off == 0 {
		if err := f.Truncate(int64(len(fixed))); err != nil {
			return err
		}
	} else if int64(len(fixed)) > size {
		return errors.New("the fixed descriptor does not fit in its area")
	} else {
		fixed = append(fixed, make([]byte, int(size)-len(fixed))...)
	}
	if _, err := f.WriteAt(fixed, off); err != nil {
		return err
	}
	return f.Sync()
}
