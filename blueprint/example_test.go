package blueprint_test

import (
	"errors"
	"fmt"

	"github.com/kiln-project/kiln/blueprint"
)

func ExampleParse() {
	doc := `
name = "web"
version = "1.0.0"

[[packages]]
name = "nginx"

[[modules]]
name = "curl"
version = ">= 7.88"

[customizations]
hostname = "web01"

[customizations.timezone]
timezone = "Europe/Berlin"

[customizations.services]
enabled = ["nginx"]

[[customizations.filesystem]]
mountpoint = "/var"
minsize = "10 GiB"
`
	bp, err := blueprint.Parse([]byte(doc), blueprint.FormatTOML)
	if err != nil {
		fmt.Println(err)
		return
	}
	c := bp.GetCustomizations()
	tz, _ := c.GetTimezone()
	fmt.Println(bp.Name, bp.Version)
	for _, p := range bp.AllPackages() {
		fmt.Printf("package %s %q\n", p.Name, p.Version)
	}
	fmt.Println("hostname:", c.GetHostname())
	fmt.Println("timezone:", tz)
	fmt.Println("enabled:", c.GetServices().GetEnabled())
	fmt.Println("/var:", c.GetFilesystems()[0].MinSize)
	// Output:
	// web 1.0.0
	// package nginx ""
	// package curl ">= 7.88"
	// hostname: web01
	// timezone: Europe/Berlin
	// enabled: [nginx.service]
	// /var: 10 GiB
}

func ExampleErrors() {
	doc := `{
  "name": "web server",
  "customizations": {
    "hostnme": "web01",
    "user": [
      {"name": "admin", "key": "not a key", "uid": "1000"}
    ],
    "files": [
      {"path": "/etc/../etc/shadow", "data": "x"}
    ],
    "fips": true
  }
}`
	_, err := blueprint.Parse([]byte(doc), blueprint.FormatJSON)
	var errs blueprint.Errors
	if errors.As(err, &errs) {
		for _, p := range errs {
			fmt.Printf("%s\n  %s\n", p.Path, p.Message)
		}
	}
	// Output:
	// name
	//   "web server" may contain only letters, digits, '-', '_' and '.', and must start with a letter or digit
	// customizations.user[0].key
	//   line 1 is not an SSH public key (expected one public key a line, e.g. "ssh-ed25519 AAAA... user@host")
	// customizations.user[0].uid
	//   expected an integer, got a string
	// customizations.files[0].path
	//   "/etc/../etc/shadow" is not in canonical form (no '..', '.', '//' or trailing '/'); write "/etc/shadow"
	// customizations.fips
	//   FIPS mode is not supported for Debian-family images; remove it; Debian ships no FIPS-validated crypto policy
	// customizations.hostnme
	//   unknown field; did you mean "hostname"?
}

func ExampleBlueprint_ToTOML() {
	bp := &blueprint.Blueprint{
		Name:     "base",
		Packages: []blueprint.Package{{Name: "vim"}},
		Customizations: &blueprint.Customizations{
			Filesystem: []blueprint.FilesystemCustomization{{Mountpoint: "/", MinSize: 10 * blueprint.GiB}},
		},
	}
	data, err := bp.ToTOML()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(data))
	// Output:
	// name = "base"
	//
	// [customizations]
	//
	// [[customizations.filesystem]]
	// minsize = 10737418240
	// mountpoint = "/"
	//
	// [[packages]]
	// name = "vim"
}
