package stages

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kiln-project/kiln/internal/manifest"
)

// OVA packs a stream-optimized VMDK into an OVA appliance: a ustar archive
// of an OVF 1.0 descriptor (first, as the OVF specification requires for
// the appliance to be read as a stream), the disk, and a manifest of the
// SHA-256 of both, the way VMware's ovftool writes one. The descriptor
// describes the virtual machine with hardware every importer knows: an LSI
// Logic SCSI controller with the disk on it and an E1000 network adapter
// (vSphere, Workstation and VirtualBox all import that), and the firmware
// as vSphere's firmware setting.
//
// The members' times are the build's epoch and their owners 0, and the
// descriptor depends only on the options and the disk's size, so the same
// disk gives the same bytes. The disk is read twice (for its hash, then
// into the archive) and never held in memory.
type OVA struct{ Opts manifest.OVA }

// ovaNameRE is the base names accepted for the members.
var ovaNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// osTypeRE is the guest OS identifiers accepted (vSphere's
// VirtualMachineGuestOsIdentifier values, e.g. debian12_64Guest).
var osTypeRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// maxUstarSize is the largest member a ustar header can describe.
const maxUstarSize = 1<<33 - 1

// Validate implements Stage.
func (s *OVA) Validate() error {
	o := s.Opts
	if err := validateOVA(&o); err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	return nil
}

// Run implements Stage.
func (s *OVA) Run(ctx context.Context, env *Env) (err error) {
	o := s.Opts
	if err := validateOVA(&o); err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	vmdk, err := openRegular(env.Input)
	if err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	defer vmdk.Close()
	fi, err := vmdk.Stat()
	if err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	size := fi.Size()
	if size > maxUstarSize {
		return fmt.Errorf("ova: the disk is %d bytes, more than an OVA's ustar archive holds (8 GiB)", size)
	}
	capacity, err := streamOptimizedCapacity(vmdk)
	if err != nil {
		return fmt.Errorf("ova: the input %s: %w", env.Input, err)
	}
	if capacity != o.Capacity {
		return fmt.Errorf("ova: capacity %d does not match the disk's virtual size, %d bytes", o.Capacity, capacity)
	}

	diskName := o.Name + "-disk1.vmdk"
	ovfName := o.Name + ".ovf"
	var ovf bytes.Buffer
	if err := ovfTemplate.Execute(&ovf, ovfData{OVA: o, DiskFile: diskName, DiskSize: size, OSID: cimOSID(o.OSType)}); err != nil {
		return fmt.Errorf("ova: writing the descriptor: %w", err)
	}
	env.Logf("hashing the disk %s", env.Input)
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(vmdk, 0, size)); err != nil {
		return fmt.Errorf("ova: reading the disk: %w", err)
	}
	ovfSum := sha256.Sum256(ovf.Bytes())
	mf := fmt.Sprintf("SHA256(%s)= %s\nSHA256(%s)= %s\n",
		ovfName, hex.EncodeToString(ovfSum[:]), diskName, hex.EncodeToString(h.Sum(nil)))

	out, err := os.OpenFile(env.Output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("ova: %w", cerr)
		}
		if err != nil {
			os.Remove(env.Output)
		}
	}()
	env.Logf("packing %s, %s and %s into the OVA", ovfName, diskName, o.Name+".mf")
	mtime := env.Epoch
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	tw := tar.NewWriter(out)
	member := func(name string, size int64, r io.Reader) error {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644,
			ModTime: mtime, Format: tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("ova: %s: %w", name, err)
		}
		if _, err := io.Copy(tw, &ctxReader{ctx: ctx, r: r}); err != nil {
			return fmt.Errorf("ova: %s: %w", name, err)
		}
		return nil
	}
	if err := member(ovfName, int64(ovf.Len()), &ovf); err != nil {
		return err
	}
	if err := member(diskName, size, io.NewSectionReader(vmdk, 0, size)); err != nil {
		return err
	}
	if err := member(o.Name+".mf", int64(len(mf)), strings.NewReader(mf)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	return nil
}

// validateOVA checks the options, naming the field at fault.
func validateOVA(o *manifest.OVA) error {
	if !ovaNameRE.MatchString(o.Name) || o.Name == "." || o.Name == ".." || len(o.Name) > 89 {
		// 89: <name>-disk1.vmdk must fit a ustar name (100 bytes).
		return fmt.Errorf("name %q is not a valid base name: use 1 to 89 of A-Z, a-z, 0-9, '.', '_' and '-'", o.Name)
	}
	if o.VMName == "" || !utf8.ValidString(o.VMName) || strings.ContainsFunc(o.VMName, unicode.IsControl) {
		return fmt.Errorf("vm_name %q must be non-empty UTF-8 text without control characters", o.VMName)
	}
	if o.Capacity <= 0 {
		return fmt.Errorf("capacity %d must be a positive number of bytes", o.Capacity)
	}
	if o.CPUs < 1 || o.CPUs > 128 {
		return fmt.Errorf("cpus %d must be between 1 and 128", o.CPUs)
	}
	if o.MemoryMiB < 256 {
		return fmt.Errorf("memory_mib %d must be at least 256", o.MemoryMiB)
	}
	if o.Firmware != "bios" && o.Firmware != "efi" {
		return fmt.Errorf("firmware %q is not supported: use bios or efi", o.Firmware)
	}
	if !osTypeRE.MatchString(o.OSType) {
		return fmt.Errorf("os_type %q is not a guest OS identifier such as debian12_64Guest", o.OSType)
	}
	return nil
}

// streamOptimizedCapacity checks that f is a stream-optimized VMDK and
// returns its virtual size in bytes, from its sparse extent header.
func streamOptimizedCapacity(f io.ReaderAt) (int64, error) {
	var hdr struct {
		Magic            [4]byte
		Version          uint32
		Flags            uint32
		Capacity         uint64 // sectors
		GrainSize        uint64
		DescriptorOffset uint64 // sectors
		DescriptorSize   uint64 // sectors
	}
	if err := binary.Read(io.NewSectionReader(f, 0, 512), binary.LittleEndian, &hdr); err != nil {
		return 0, errors.New("not a VMDK: it is shorter than a VMDK header")
	}
	if string(hdr.Magic[:]) != "KDMV" {
		return 0, errors.New("not a VMDK (no KDMV magic): convert it with qemu-img convert -O vmdk -o subformat=streamOptimized")
	}
	const compressedGrains = 1 << 16
	if hdr.Flags&compressedGrains == 0 || hdr.DescriptorSize == 0 || hdr.DescriptorSize > 2048 {
		return 0, errors.New("not a stream-optimized VMDK (its grains are not compressed)")
	}
	desc := make([]byte, hdr.DescriptorSize*512)
	if _, err := f.ReadAt(desc, int64(hdr.DescriptorOffset*512)); err != nil {
		return 0, fmt.Errorf("reading the VMDK descriptor: %w", err)
	}
	if !bytes.Contains(desc, []byte(`createType="streamOptimized"`)) {
		return 0, errors.New(`not a stream-optimized VMDK: its descriptor has no createType="streamOptimized"`)
	}
	if hdr.Capacity == 0 || hdr.Capacity > 1<<54 {
		return 0, fmt.Errorf("the VMDK header's capacity of %d sectors is not valid", hdr.Capacity)
	}
	return int64(hdr.Capacity * 512), nil
}

// cimOSID is the CIM operating system code the descriptor's
// OperatingSystemSection carries next to vSphere's identifier: 96 for
// 64-bit Debian, 95 for 32-bit Debian, 101 (other 64-bit Linux) or 36
// (Linux) for the others.
func cimOSID(osType string) int {
	is64 := strings.Contains(osType, "64")
	switch {
	case strings.HasPrefix(osType, "debian") && is64:
		return 96
	case strings.HasPrefix(osType, "debian"):
		return 95
	case is64:
		return 101
	default:
		return 36
	}
}

type ovfData struct {
	manifest.OVA
	DiskFile string
	DiskSize int64
	OSID     int
}

// ctxReader stops a copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// xmlText escapes s for XML character data and attribute values.
func xmlText(s string) (string, error) {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}

// ovfTemplate is the OVF 1.0 descriptor. Every value from the options
// goes through x, which escapes it for XML.
var ovfTemplate = template.Must(template.New("ovf").Funcs(template.FuncMap{"x": xmlText}).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="{{x .DiskFile}}" ovf:id="file1" ovf:size="{{.DiskSize}}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{{.Capacity}}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{{x .VMName}}">
    <Info>A virtual machine</Info>
    <Name>{{x .VMName}}</Name>
    <OperatingSystemSection ovf:id="{{.OSID}}" vmw:osType="{{x .OSType}}">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{{x .VMName}}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>{{.CPUs}} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{{.CPUs}}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>{{.MemoryMiB}}MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{{.MemoryMiB}}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:Description>E1000 ethernet adapter on "VM Network"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>E1000</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="{{x .Firmware}}"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`))
