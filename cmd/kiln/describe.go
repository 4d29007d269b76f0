package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/emulation"
)

// defaultDistro is used when neither a flag nor the blueprint names one.
const defaultDistro = "debian-12"

// hostArch is kiln's name for the architecture kiln runs on.
func hostArch() string { return emulation.Host() }

type partitionDesc struct {
	Role       string `json:"role"`
	Name       string `json:"name,omitempty"`
	Size       string `json:"size"`
	Filesystem string `json:"filesystem,omitempty"`
	Mountpoint string `json:"mountpoint,omitempty"`
}

type imageTypeDesc struct {
	Name           string          `json:"name"`
	Aliases        []string        `json:"aliases,omitempty"`
	Description    string          `json:"description"`
	Distro         string          `json:"distro"`
	Arch           string          `json:"arch"`
	Filename       string          `json:"filename"`
	MIMEType       string          `json:"mime_type"`
	Output         distro.Output   `json:"output"`
	Bootable       bool            `json:"bootable"`
	Bootloader     string          `json:"bootloader"`
	DefaultSize    string          `json:"default_size,omitempty"`
	PartitionTable string          `json:"partition_table,omitempty"`
	Partitions     []partitionDesc `json:"partitions,omitempty"`
	// DiskCustomization says what customizations.disk builds and what it
	// refuses, for types that take it.
	DiskCustomization *distro.DiskCustomization `json:"disk_customization,omitempty"`
	BaseVariant       string                    `json:"base_variant"`
	DefaultPackages   []string                  `json:"default_packages"`
	ExcludedPackages  []string                  `json:"excluded_packages,omitempty"`
	Services          distro.Services           `json:"services"`
	KernelCmdline     []string                  `json:"kernel_cmdline,omitempty"`
	NetworkDrivers    []string                  `json:"network_drivers,omitempty"`
	SupportedOptions  []string                  `json:"supported_options"`
	Buildable         bool                      `json:"buildable"`
	NotBuildable      string                    `json:"not_buildable_reason,omitempty"`
	// Emulated: this host builds it through qemu-user.
	Emulated bool `json:"emulated,omitempty"`
}

func describeImageType(it *distro.ImageType) imageTypeDesc {
	ar := it.Arch()
	d := imageTypeDesc{
		Name: it.Name, Aliases: it.Aliases, Description: it.Description, Distro: ar.Distro().Name, Arch: ar.Name,
		Filename: it.Filename("<name>"), MIMEType: it.MIMEType, Output: it.Output, Bootable: it.Bootable,
		Bootloader: it.Bootloader, BaseVariant: it.Variant, DefaultPackages: it.DefaultPackages(),
		ExcludedPackages: it.ExcludePackages, Services: it.Services, KernelCmdline: it.KernelCmdline,
		SupportedOptions:  it.SupportedOptions,
		DiskCustomization: it.DiskCustomization(),
		NetworkDrivers:    it.NetworkDrivers,
	}
	mode, why := buildableHere(ar)
	d.Buildable, d.NotBuildable, d.Emulated = why == "", why, mode == emulation.Emulated
	if it.DefaultSize > 0 {
		d.DefaultSize = it.DefaultSize.String()
	}
	if pt := it.PartitionTable; pt != nil {
		d.PartitionTable = string(pt.Type)
		for _, p := range pt.Partitions {
			pd := partitionDesc{Role: string(p.Role), Name: p.Name, Size: p.Size.String()}
			if p.Size == 0 {
				pd.Size = "rest of the disk, at least " + p.MinSize.String()
			}
			if p.Filesystem != nil {
				pd.Filesystem, pd.Mountpoint = p.Filesystem.Type, p.Filesystem.Mountpoint
			}
			d.Partitions = append(d.Partitions, pd)
		}
	}
	return d
}

func newDescribeCommand(a *app) *cobra.Command {
	var distroName, arch, format string
	cmd := &cobra.Command{
		Use:     "describe IMAGE-TYPE",
		Short:   "Show what an image type contains: partition table, packages, services, supported blueprint options",
		Example: "  kiln describe qcow2 --distro debian-12",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := a.registry.Distro(distroName)
			if err != nil {
				return err
			}
			ar, err := d.Arch(arch)
			if err != nil {
				return err
			}
			it, err := ar.ImageType(args[0])
			if err != nil {
				return err
			}
			desc := describeImageType(it)
			switch format {
			case "json":
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(desc)
			case "text":
				return printDescription(a, desc)
			default:
				return fmt.Errorf("--format %q: expected text or json", format)
			}
		},
	}
	cmd.Flags().StringVar(&distroName, "distro", defaultDistro, "distribution")
	cmd.Flags().StringVar(&arch, "arch", hostArch(), "architecture")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func printDescription(a *app, d imageTypeDesc) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("Image type", d.Name)
	row("Aliases", strings.Join(d.Aliases, ", "))
	row("Description", d.Description)
	row("Distribution", d.Distro)
	row("Architecture", d.Arch)
	if !d.Buildable {
		row("Buildable", "no: "+d.NotBuildable)
	} else if d.Emulated {
		row("Buildable", "yes, through qemu-user emulation on this "+emulation.Host()+" host")
	}
	row("File name", d.Filename)
	row("MIME type", d.MIMEType)
	out := d.Output.Format
	if d.Output.Compression != "" {
		out += ", " + d.Output.Compression + " compressed"
	}
	row("Output", out)
	row("Bootloader", d.Bootloader)
	row("Default size", d.DefaultSize)
	row("Base variant", d.BaseVariant)
	row("Kernel arguments", strings.Join(d.KernelCmdline, " "))
	row("Network drivers", strings.Join(d.NetworkDrivers, ", "))
	row("Enabled services", strings.Join(d.Services.Enabled, ", "))
	if err := tw.Flush(); err != nil {
		return err
	}
	if d.PartitionTable != "" {
		fmt.Fprintf(a.stdout, "\nPartition table (%s):\n", d.PartitionTable)
		tw = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ROLE\tNAME\tSIZE\tFILESYSTEM\tMOUNT POINT")
		for _, p := range d.Partitions {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Role, p.Name, p.Size, p.Filesystem, p.Mountpoint)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if dc := d.DiskCustomization; dc != nil {
		if err := printDiskCustomization(a, dc); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "\nDefault packages (plus the %s base):\n  %s\n", d.BaseVariant, strings.Join(d.DefaultPackages, " "))
	if len(d.ExcludedPackages) > 0 {
		fmt.Fprintf(a.stdout, "\nExcluded packages:\n  %s\n", strings.Join(d.ExcludedPackages, " "))
	}
	fmt.Fprintf(a.stdout, "\nSupported blueprint options:\n")
	for _, o := range d.SupportedOptions {
		fmt.Fprintf(a.stdout, "  %s\n", o)
	}
	return nil
}

func printDiskCustomization(a *app, dc *distro.DiskCustomization) error {
	fmt.Fprintf(a.stdout, "\nDisk customization (customizations.disk):\n")
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  Partition tables:\t%s (the first is the default)\n", strings.Join(dc.TableTypes, ", "))
	fmt.Fprintf(tw, "  Filesystems:\t%s\n", strings.Join(dc.Filesystems, ", "))
	fmt.Fprintf(tw, "  Order:\t%s\n", dc.Order)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "  Refused:\n")
	tw = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	for _, feature := range slices.Sorted(maps.Keys(dc.Refused)) {
		fmt.Fprintf(tw, "    %s:\t%s\n", feature, dc.Refused[feature])
	}
	return tw.Flush()
}
