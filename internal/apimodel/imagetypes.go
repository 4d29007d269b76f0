package apimodel

// ImageBuilderImageTypes are the image type names image-builder's API
// takes (its ImageTypes enum), each with the name of the kiln image type
// it names; "" for those kiln has no type for (see UnbuiltImageTypes).
// Kiln's distributions declare these names as aliases of their types, so
// a request may use either name.
var ImageBuilderImageTypes = map[string]string{
	"guest-image":            "qcow2",
	"aws":                    "ami",
	"ami":                    "ami",
	"gcp":                    "gce",
	"azure":                  "vhd",
	"vhd":                    "vhd",
	"vsphere":                "vmdk",
	"vsphere-ova":            "ova",
	"wsl":                    "wsl",
	"image-installer":        "image-installer",
	"oci":                    "container",
	"edge-commit":            "",
	"edge-installer":         "",
	"rhel-edge-commit":       "",
	"rhel-edge-installer":    "",
	"pxe-tar-xz":             "",
	"network-installer":      "",
	"bootable-container-iso": "",
}

// UnbuiltImageTypes say why kiln builds no image of these image-builder
// types, for the error that refuses them.
var UnbuiltImageTypes = map[string]string{
	"edge-commit":            "an OSTree commit; Debian images are not OSTree-based",
	"edge-installer":         "an installer of an OSTree commit; Debian images are not OSTree-based",
	"rhel-edge-commit":       "an OSTree commit; Debian images are not OSTree-based",
	"rhel-edge-installer":    "an installer of an OSTree commit; Debian images are not OSTree-based",
	"pxe-tar-xz":             "a PXE-bootable tree; build tar and serve it with your own PXE setup",
	"network-installer":      "an Anaconda network installer; use image-installer",
	"bootable-container-iso": "an installer of a bootable container; Debian images are not image-mode (bootc)",
}
