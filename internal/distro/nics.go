package distro

import (
	"fmt"
	"slices"
	"strings"
)

// flavorNetworkDrivers lists, per kernel flavour, the network card drivers
// of its package among those an image type may declare in
// network_drivers. The cloud kernel is built for the paravirtual cards of
// hypervisors and clouds and lacks the emulated Intel cards (e1000 on
// QEMU's i440fx machine and many VMware guests, e1000e on QEMU's q35
// machine), which the generic kernel has.
//
// To refresh it, list the package's modules, e.g. for the cloud flavour
// on amd64:
//
//	apt-get download $(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image/{print $2; exit}')
//	dpkg -c linux-image-*-cloud-amd64_*.deb | grep -o 'drivers/net/.*\.ko'
//
// (a module's file may spell "-" where its name has "_": xen-netfront.ko).
// The arm64 kernels of Debian 12 have the same drivers of this list as
// their amd64 flavours (linux-image-cloud-arm64: ena, gve, hv_netvsc,
// ixgbevf, mana, virtio_net, vmxnet3, xen-netfront; linux-image-arm64:
// those and e1000, e1000e, igb).
//
// The e2e tests check the declared drivers on every image they build.
var flavorNetworkDrivers = map[string][]string{
	"cloud":   {"ena", "gve", "hv_netvsc", "ixgbevf", "mana", "virtio_net", "vmxnet3", "xen_netfront"},
	"generic": {"e1000", "e1000e", "ena", "gve", "hv_netvsc", "igb", "ixgbevf", "mana", "virtio_net", "vmxnet3", "xen_netfront"},
}

// checkNetworkDrivers makes sure the kernel flavour an image type installs
// drives every network card it declares, and that it installs a kernel at
// all when it declares any.
func checkNetworkDrivers(it *ImageType) error {
	if len(it.NetworkDrivers) == 0 {
		return nil
	}
	if !it.Kernel {
		return fmt.Errorf("network_drivers: the image type has no kernel to drive %s", strings.Join(it.NetworkDrivers, ", "))
	}
	have := flavorNetworkDrivers[it.KernelFlavor]
	var missing []string
	for _, d := range it.NetworkDrivers {
		if !slices.Contains(have, d) {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("network_drivers: the %s kernel has no %s driver: choose a kernel_flavor that has (the %s kernel has %s)",
			it.KernelFlavor, strings.Join(missing, ", "), it.KernelFlavor, strings.Join(have, ", "))
	}
	return nil
}
