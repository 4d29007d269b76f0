package distro

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
)

// Buildable says why this host cannot build images of the type's
// architecture, or returns nil.
func (it *ImageType) Buildable() error {
	if a := it.arch; a.NotBuildable != "" {
		return fmt.Errorf("%s %s images cannot be built on this host: %s", a.distro.Name, a.Name, a.NotBuildable)
	}
	return nil
}

// touches reports whether a problem of reported is at field, inside it or
// around it: the field cannot be trusted for a further check.
func touches(reported blueprint.Errors, field string) bool {
	if field == "" {
		return false
	}
	if reported.Covers(field) {
		return true
	}
	for _, p := range reported {
		if strings.HasPrefix(p.Path, field+".") || strings.HasPrefix(p.Path, field+"[") {
			return true
		}
	}
	return false
}

// diskReported says whether an earlier check found a problem in the
// fields the disk layout is made of: then the layout's own error would
// only be the echo of a half-decoded value.
func diskReported(reported blueprint.Errors) bool {
	return touches(reported, "customizations.disk") || touches(reported, "customizations.filesystem")
}

// anyTypeName names the image type AnyImageType returns, in messages.
const anyTypeName = "(any)"

// AnyImageType is an image type of the architecture that supports every
// blueprint option and adds no package, kernel or disk of its own: the
// checks of a blueprint that do not depend on the image type (time zone,
// locale, keyboard, firewall, paths, packages against the distribution)
// run on it when no type is named. It is for checking only; building it
// is not meant.
func (a *Arch) AnyImageType() *ImageType {
	it := &ImageType{Name: anyTypeName, Variant: "required", arch: a}
	for _, o := range blueprintOptions {
		it.SupportedOptions = append(it.SupportedOptions, o.name)
	}
	return it
}

// reposToPlan is c, or a copy of it whose repositories that an earlier
// check found wrong are left empty: a half-decoded repository may lack
// its URLs. The others keep their places, so their field paths stay
// right.
func reposToPlan(c *blueprint.Customizations, reported blueprint.Errors) *blueprint.Customizations {
	var cc *blueprint.Customizations
	for i := range c.Repositories {
		if !touches(reported, fmt.Sprintf("customizations.repositories[%d]", i)) {
			continue
		}
		if cc == nil {
			copied := *c
			copied.Repositories = slices.Clone(c.Repositories)
			cc = &copied
		}
		cc.Repositories[i] = blueprint.RepositoryCustomization{ID: c.Repositories[i].ID}
	}
	if cc == nil {
		return c
	}
	return cc
}
