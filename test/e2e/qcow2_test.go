package e2e

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/boottest"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/testhost"
)

// everything exercises every customization the guest checks below look
// for; KEY is replaced by a key made for the run.
const everything = `
name = "everything"
version = "1.0.0"

[[packages]]
name = "tmux"

[[packages]]
name = "jq"

[customizations]
hostname = "kiln-e2e"

[customizations.kernel]
append = "kiln.test=1"

[[customizations.group]]
name = "builders"
gid = 2345

[[customizations.user]]
name = "ops"
description = "Operations"
key = "KEY"
groups = ["sudo", "builders"]
shell = "/bin/bash"
uid = 1500

[[customizations.sshkey]]
user = "root"
key = "KEY"

[customizations.timezone]
timezone = "Europe/Berlin"

[customizations.locale]
languages = ["de_DE.UTF-8", "en_US.UTF-8"]
keyboard = "de-latin1-nodeadkeys"

[customizations.firewall]
ports = ["8080:tcp"]

[customizations.firewall.services]
disabled = ["telnet"]

[customizations.sshd]
password_authentication = false
client_alive_interval = 120

[[customizations.firstboot.scripts]]
type = "custom"
name = "hello"
contents = """
#!/bin/sh
echo "first boot of $(hostname)" > /var/lib/kiln-e2e-firstboot
"""

[customizations.services]
enabled = ["fstrim.timer", "kiln-hello.service"]
masked = ["apt-daily.timer"]

[[customizations.directories]]
path = "/srv/data"
user = "ops"
group = "builders"
mode = "0750"

[[customizations.files]]
path = "/srv/data/hello.txt"
user = "ops"
group = "builders"
mode = "0640"
data = "hello from kiln\n"

[[customizations.files]]
path = "/etc/systemd/system/kiln-hello.service"
data = """
[Unit]
Description=A unit the blueprint ships and enables
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
"""

[[customizations.filesystem]]
mountpoint = "/var/log"
minsize = "1 GiB"
`

// TestQcow2Image builds one image with every customization, then boots it
// with SeaBIOS and with OVMF and checks each customization from inside.
func TestQcow2Image(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	t.Parallel()
	dir := t.TempDir()
	key, pub := newSSHKey(t)
	m := plan(t, strings.ReplaceAll(everything, "KEY", pub), "qcow2")
	image := build(t, m, sharedCache(t), filepath.Join(dir, "out"), nil)
	showBuildLogOnFailure(t, filepath.Join(dir, "out"))
	// The image again from its manifest in a second cache (beside the
	// boots below): the same bytes.
	t.Run("reproducible", func(t *testing.T) {
		t.Parallel()
		newRebuilder(t).assertRebuildsIdentically(t, m, image, nil)
	})

	info := run(t, "qemu-img", "info", "--output=json", image)
	assert.Contains(t, info, `"format": "qcow2"`)
	rootUUID := rootFilesystemUUID(t, m)
	espUUID := mountUUID(t, m, "/boot/efi")

	// The two boots run side by side, and beside the other tests' builds.
	// Each gets the network card QEMU gives when none is named, as
	// "qemu-system-x86_64 disk.qcow2" does: e1000 on the pc machine (QEMU's
	// default, booted with BIOS) and e1000e on q35 (booted with UEFI). The
	// cloud and vSphere tests boot virtio-net.
	for _, boot := range []struct{ firmware, machine, driver string }{
		{"bios", "pc", "e1000"},
		{"uefi", "q35", "e1000e"},
	} {
		firmware := boot.firmware
		t.Run(firmware, func(t *testing.T) {
			t.Parallel()
			g := bootGuestWith(t, boottest.Config{Image: image, Firmware: firmware, SSHKey: key, User: "root", Machine: boot.machine, NIC: boottest.NICDefault})
			ctx, vm, sh := g.ctx, g.vm, g.sh
			// SSH came in through that card; its driver proves which it is.
			assert.Equal(t, boot.driver, sh("sh", "-c", "basename $(readlink /sys/class/net/*/device/driver)"), "the guest's network card")
			checkNetworkDrivers(t, sh, "qcow2")
			if firmware == "uefi" {
				assert.Equal(t, "yes", sh("sh", "-c", "test -d /sys/firmware/efi && echo yes"), "booted through UEFI")
			} else {
				assert.Equal(t, "no", sh("sh", "-c", "test -d /sys/firmware/efi && echo yes || echo no"), "booted through BIOS")
			}
			assert.Equal(t, "kiln-e2e", sh("hostname"))
			assert.Equal(t, rootUUID, sh("findmnt", "-n", "-o", "UUID", "/"), "root mounted by the manifest's UUID")
			assert.Equal(t, "active", sh("systemctl", "is-active", "boot-efi.automount"), "the ESP is mounted when first used, not on the way to SSH")
			assert.Equal(t, []string{"vfat", espUUID}, espMount(sh, "FSTYPE,UUID"), "the ESP mounted by the manifest's UUID")
			// The initramfs has the virtual machines' disk drivers, not
			// the 30 MB of initramfs-tools' MODULES=most.
			assert.Equal(t, "0", sh("sh", "-c", `lsinitramfs "/boot/initrd.img-$(uname -r)" | grep -c /kernel/drivers/net/ || true`), "no network drivers in the initramfs")
			assert.Contains(t, sh("sh", "-c", `lsinitramfs "/boot/initrd.img-$(uname -r)" | grep -E '/(virtio_blk|ahci|nvme|hv_storvsc|vmw_pvscsi)\.ko' | sed 's|.*/||' | sort | tr '\n' ' '`), "ahci.ko")
			assert.Contains(t, sh("cat", "/proc/cmdline"), "kiln.test=1")
			assert.Contains(t, sh("cat", "/proc/cmdline"), "root=UUID="+rootUUID)

			// The user, its key, groups and shell; the group with its gid.
			id := sh("id", "ops")
			assert.Contains(t, id, "uid=1500(ops)")
			assert.Contains(t, id, "(sudo)")
			assert.Contains(t, id, "2345(builders)")
			assert.Equal(t, "builders:x:2345:ops", sh("getent", "group", "builders"))
			assert.True(t, strings.HasSuffix(sh("getent", "passwd", "ops"), ":/home/ops:/bin/bash"))
			asOps := exec.CommandContext(ctx, "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
				"-i", key, "-p", strconv.Itoa(vm.Port()), "ops@127.0.0.1", "id", "-un")
			who, err := asOps.Output()
			require.NoError(t, err, "ops logs in with its key")
			assert.Equal(t, "ops", strings.TrimSpace(string(who)))

			// Packages, time zone, locale, keyboard.
			assert.Equal(t, "install ok installed\ninstall ok installed", sh("dpkg-query", "-W", "-f", "${Status}\n", "tmux", "jq"))
			assert.Equal(t, "/usr/share/zoneinfo/Europe/Berlin", sh("readlink", "-f", "/etc/localtime"))
			assert.Contains(t, sh("locale", "-a"), "de_DE.utf8")
			assert.Contains(t, sh("cat", "/etc/default/locale"), "de_DE.UTF-8")
			// The console keymap de-latin1-nodeadkeys, as osbuild writes it, is
			// Debian's XKB layout de with variant nodeadkeys.
			kb := sh("cat", "/etc/default/keyboard")
			assert.Contains(t, kb, `XKBLAYOUT="de"`)
			assert.Contains(t, kb, `XKBVARIANT="nodeadkeys"`)
			assert.Equal(t, "fresh", sh("sh", "-c", "test /etc/console-setup/cached_setup_terminal.sh -nt /etc/default/keyboard && echo fresh || echo stale"),
				"console-setup's cache is newer than the keyboard configuration, so the first boot does not rebuild it")

			// Services and firewall.
			assert.Equal(t, "enabled", sh("systemctl", "is-enabled", "fstrim.timer"))
			assert.Equal(t, "active", sh("systemctl", "is-active", "kiln-hello.service"), "a unit the blueprint ships is enabled and started")
			masked, _ := vm.Run(ctx, "systemctl", "is-enabled", "apt-daily.timer")
			assert.Equal(t, "masked", strings.TrimSpace(masked))
			assert.Equal(t, "active", sh("systemctl", "is-active", "ssh"))
			rules := sh("nft", "list", "ruleset")
			assert.Contains(t, rules, "8080")
			assert.Contains(t, rules, "policy drop")
			assert.Contains(t, rules, "tcp dport 23 drop", "the disabled telnet is closed explicitly")

			// sshd options through the drop-in, as sshd itself reads them.
			sshd := sh("sshd", "-T")
			assert.Contains(t, sshd, "clientaliveinterval 120")
			assert.Contains(t, sshd, "passwordauthentication no")

			// The first-boot script ran once, after the network was up.
			assert.Equal(t, "first boot of kiln-e2e", sh("sh", "-c", "for i in $(seq 120); do test -s /var/lib/kiln-e2e-firstboot && break; sleep 1; done; cat /var/lib/kiln-e2e-firstboot"))
			assert.Equal(t, "active", sh("sh", "-c", "systemctl is-active kiln-firstboot-hello.service || true"), "the oneshot finished and succeeded")
			assert.Equal(t, "yes", sh("sh", "-c", "test -e /var/lib/kiln-firstboot/hello.done && echo yes"), "its stamp keeps it from running again")

			// Directory and file with owner and mode; /var/log its own filesystem.
			assert.Equal(t, "750 ops builders", sh("stat", "-c", "%a %U %G", "/srv/data"))
			assert.Equal(t, "640 ops builders", sh("stat", "-c", "%a %U %G", "/srv/data/hello.txt"))
			assert.Equal(t, "hello from kiln", sh("cat", "/srv/data/hello.txt"))
			assert.Equal(t, "ext4", sh("findmnt", "-n", "-o", "FSTYPE", "/var/log"))
			size := sh("findmnt", "-n", "-b", "-o", "SIZE", "/var/log")
			assert.GreaterOrEqual(t, len(size), 10, "at least 1 GiB: %s bytes", size)

			// A generic image: its own machine-id and fresh host keys.
			assert.Len(t, sh("cat", "/etc/machine-id"), 32)
			assert.NotEmpty(t, sh("sh", "-c", "ls /etc/ssh/ssh_host_ed25519_key.pub"))
			// The RSA key is made after sshd started, off the way to the
			// first login, and sshd offers it without a restart.
			rsa := sh("sh", "-c", "for i in $(seq 300); do test -s /etc/ssh/ssh_host_rsa_key.pub && break; sleep 1; done; cut -d' ' -f2 /etc/ssh/ssh_host_rsa_key.pub")
			require.NotEmpty(t, rsa, "the RSA host key is made")
			assert.Contains(t, sh("ssh-keyscan", "-t", "rsa", "127.0.0.1"), rsa, "sshd offers the RSA key made after it started")
			sshUp, err := strconv.ParseInt(sh("systemctl", "show", "-P", "ActiveEnterTimestampMonotonic", "ssh.service"), 10, 64)
			require.NoError(t, err)
			rsaDone, err := strconv.ParseInt(sh("systemctl", "show", "-P", "ExecMainExitTimestampMonotonic", "kiln-ssh-keygen-rsa.service"), 10, 64)
			require.NoError(t, err)
			assert.Less(t, sshUp, rsaDone, "sshd did not wait for the RSA key")
		})
	}
}

// rootFilesystemUUID finds the root filesystem's UUID in the manifest.
func rootFilesystemUUID(t *testing.T, m *manifest.Manifest) string {
	t.Helper()
	return mountUUID(t, m, "/")
}

// mountUUID finds the UUID of the filesystem mounted at mountpoint in the
// manifest's disk.
func mountUUID(t *testing.T, m *manifest.Manifest, mountpoint string) string {
	t.Helper()
	for _, p := range m.Pipelines {
		for _, s := range p.Stages {
			if d, ok := s.Options.(*manifest.DiskImage); ok {
				if part := d.PartitionTable.FindMountpoint(mountpoint); part != nil {
					return part.Payload.UUID
				}
			}
		}
	}
	t.Fatalf("the manifest has no filesystem at %s", mountpoint)
	return ""
}
