package stages

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

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
