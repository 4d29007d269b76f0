#!/usr/bin/env bash
# The hand-rolled baseline for bench/build.sh: the work `kiln build` does for
# examples/base.toml as qcow2, with plain tools and no cache — mmdebstrap
# straight from the mirror, the same configuration, then sfdisk + mkfs.ext4
# + mkfs.vfat/mcopy + GRUB (BIOS and UEFI) + qemu-img convert. Same packages
# as kiln's qcow2 (the cloud kernel, zstd for the initramfs).
#
# usage: bench/baseline.sh OUTPUT.qcow2
set -euo pipefail
out=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root

sources=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}')
main=$(printf '%s\n' $sources | grep -v -- '-security' | head -n1)
security=$(printf '%s\n' $sources | grep -- '-security' | head -n1)
key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSOSKLZH9GYzn+gjqei1p55feF26p8vNjwhvky0aGR8 ops@example"
root_uuid=$(cat /proc/sys/kernel/random/uuid)
esp_id=ABCD1234

mmdebstrap --variant=required \
	--include=linux-image-cloud-amd64,zstd,grub-pc-bin,grub-efi-amd64-bin,systemd-sysv,systemd-resolved,udev,dbus,initramfs-tools,openssh-server,sudo,ca-certificates,iproute2,netbase,less,procps,passwd \
	--customize-hook='echo base01 >"$1/etc/hostname"' \
	--customize-hook='ln -sf /usr/share/zoneinfo/Europe/Berlin "$1/etc/localtime"; echo Europe/Berlin >"$1/etc/timezone"' \
	--customize-hook='chroot "$1" useradd -m -G sudo -s /bin/bash ops' \
	--customize-hook="mkdir -p \"\$1/home/ops/.ssh\"; echo '$key' >\"\$1/home/ops/.ssh/authorized_keys\"; chroot \"\$1\" chown -R ops:ops /home/ops/.ssh; chmod 700 \"\$1/home/ops/.ssh\"" \
	--customize-hook='printf "[Match]\nType=ether\n[Network]\nDHCP=yes\n" >"$1/etc/systemd/network/80-dhcp.network"' \
	--customize-hook='chroot "$1" systemctl enable ssh systemd-networkd systemd-resolved' \
	--customize-hook="printf 'UUID=$root_uuid / ext4 errors=remount-ro 0 1\nUUID=ABCD-1234 /boot/efi vfat umask=0077 0 2\n' >\"\$1/etc/fstab\"" \
	--customize-hook='chroot "$1" update-initramfs -u -k all' \
	--customize-hook='mkdir -p "$1/boot/efi/EFI/BOOT" "$1/boot/grub"; cp -r "$1/usr/lib/grub/i386-pc" "$1/usr/lib/grub/x86_64-efi" "$1/boot/grub/"' \
	--customize-hook="printf 'search --no-floppy --fs-uuid --set=root $root_uuid\nset prefix=(\$root)/boot/grub\n' >\"\$1/boot/grub/early.cfg\"" \
	--customize-hook='chroot "$1" grub-mkimage -O x86_64-efi -c /boot/grub/early.cfg -p /boot/grub -o /boot/efi/EFI/BOOT/BOOTX64.EFI part_gpt fat ext2 search search_fs_uuid normal linux configfile echo all_video efi_gop gzio test boot' \
	--customize-hook='chroot "$1" grub-mkimage -O i386-pc -c /boot/grub/early.cfg -p /boot/grub -o /boot/grub/i386-pc/core.img biosdisk part_gpt ext2 search search_fs_uuid normal linux configfile echo gzio test boot' \
	--customize-hook='truncate -s0 "$1/etc/machine-id"; rm -f "$1"/etc/ssh/ssh_host_*' \
	bookworm "$root" "deb $main bookworm main" "deb $main bookworm-updates main" ${security:+"deb $security bookworm-security main"}

kver=$(basename "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)" | sed 's/^vmlinuz-//')
cat >"$root/boot/grub/grub.cfg" <<CFG
set timeout=1
menuentry 'Debian' {
	search --no-floppy --fs-uuid --set=root $root_uuid
	linux /boot/vmlinuz-$kver root=UUID=$root_uuid ro console=tty0 console=ttyS0,115200n8
	initrd /boot/initrd.img-$kver
}
CFG

# Disk: 1 MiB BIOS boot, 127 MiB ESP, ext4 root to 4 GiB.
img=$work/disk.raw
truncate -s 4G "$img"
sfdisk -q "$img" <<TABLE
label: gpt
start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649
start=4096, size=260096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
start=264192, size=8120320, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709
TABLE
mkdir -p "$work/esp-content"
mv "$root/boot/efi/EFI" "$work/esp-content/"
mkfs.vfat -i "$esp_id" -n ESP -C "$work/esp.img" $((260096 / 2)) >/dev/null
mcopy -s -i "$work/esp.img" "$work/esp-content/EFI" ::/
mkfs.ext4 -q -U "$root_uuid" -L root -d "$root" "$work/root.img" $((8120320 / 2))k
dd if="$work/esp.img" of="$img" bs=512 seek=4096 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$img" bs=512 seek=264192 conv=notrunc,sparse status=none

# GRUB's BIOS boot code: boot.img into the MBR (440 bytes), core.img into the
# BIOS boot partition, with the sector numbers patched in.
le64() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)) 0 0 0 0)"; }
le16() { printf "$(printf '\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)))"; }
dd if="$root/usr/lib/grub/i386-pc/boot.img" of="$img" bs=440 count=1 conv=notrunc status=none
le64 2048 | dd of="$img" bs=1 seek=$((0x5c)) conv=notrunc status=none
core=$root/boot/grub/i386-pc/core.img
sectors=$(( ($(stat -c %s "$core") + 511) / 512 ))
dd if="$core" of="$img" bs=512 seek=2048 conv=notrunc status=none
le64 2049 | dd of="$img" bs=1 seek=$((2048 * 512 + 0x1f4)) conv=notrunc status=none
le16 $((sectors - 1)) | dd of="$img" bs=1 seek=$((2048 * 512 + 0x1fc)) conv=notrunc status=none

qemu-img convert -O qcow2 -o compat=1.1 "$img" "$out"
