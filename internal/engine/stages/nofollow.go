package stages

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// The blueprint's paths (files, directories) are resolved inside the tree
// without following any symbolic link, with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS) one component at a time:
//
//   - a directory on the way that is a symbolic link is an error that names
//     where it points (`/var/run is a link to /run in the image; use /run`);
//   - a file's last component that is a symbolic link is replaced by the
//     file: the link goes, whatever it pointed at is untouched;
//   - a directory's last component that is a symbolic link is an error, as
//     for a directory on the way (replacing it would break the system).
//
// Nothing a blueprint writes therefore lands anywhere but at the very
// path it names.

// linkError is the error for a symbolic link at p (a path in the image)
// that points at target.
func linkError(p, target, rest string) error {
	use := target
	if !path.IsAbs(use) {
		use = path.Join(path.Dir(p), use)
	}
	if rest != "" {
		use = path.Join(use, rest)
	}
	return fmt.Errorf("%s is a link to %s in the image; use %s", p, target, use)
}

// openDirNoFollow opens the directory dir (an absolute, clean path in the
// tree at root) without following a symbolic link anywhere on the way.
// Missing directories are created 0755, owned by root, when create is
// set; otherwise a missing one is an error wrapping fs.ErrNotExist. full
// is the path the caller means to reach through dir, for the errors.
func openDirNoFollow(root, dir, full string, create bool) (*os.File, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	cur := "/"
	elems := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	for _, elem := range elems {
		if elem == "" {
			continue
		}
		next := path.Join(cur, elem)
		nfd, err := unix.Openat2(fd, elem, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(fd, elem, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return nil, fmt.Errorf("creating %s: %w", next, err)
			}
			nfd, err = unix.Openat2(fd, elem, &unix.OpenHow{
				Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
				Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
			})
		}
		if err != nil {
			defer unix.Close(fd)
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				if target, lerr := readlinkat(fd, elem); lerr == nil {
					return nil, linkError(next, target, strings.TrimPrefix(full, next+"/"))
				}
				return nil, fmt.Errorf("%s is not a directory in the image", next)
			}
			if errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("%s does not exist in the image: %w", next, fs.ErrNotExist)
			}
			return nil, fmt.Errorf("%s: %w", next, err)
		}
		unix.Close(fd)
		fd, cur = nfd, next
	}
	// Reopen as a real directory descriptor (O_PATH cannot be used for
	// I/O on the entries' metadata with every call we need).
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	unix.Close(fd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return os.NewFile(uintptr(dfd), dir), nil
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// entry is what is at name in the directory d, not following a link.
func entry(d *os.File, name string) (st unix.Stat_t, exists bool, err error) {
	err = unix.Fstatat(int(d.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return st, false, nil
	}
	return st, err == nil, err
}

// writeFileNoFollow writes data to p (an absolute, clean path in the tree
// at root) as a new file with the owner and mode given, and renames it
// into place: a symbolic link at p is replaced, a directory is an error.
// Missing parents are created 0755, owned by root. It returns the link p
// was, if it was one.
func writeFileNoFollow(root, p string, data []byte, uid, gid int, perm uint32) (replacedLink string, err error) {
	d, err := openDirNoFollow(root, path.Dir(p), p, true)
	if err != nil {
		return "", err
	}
	defer d.Close()
	dfd := int(d.Fd())
	name := path.Base(p)
	st, exists, err := entry(d, name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	if exists {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			return "", fmt.Errorf("%s is a directory in the image; a file cannot replace it", p)
		case unix.S_IFLNK:
			replacedLink, _ = readlinkat(dfd, name)
		}
	}
	var tmp string
	var fd int
	for i := 0; ; i++ {
		tmp = fmt.Sprintf(".kiln-%d-%d", os.Getpid(), i)
		fd, err = unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if !errors.Is(err, unix.EEXIST) || i > 100 {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	ok := false
	defer func() {
		if !ok {
			unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	// chown clears setuid and setgid: the mode comes second.
	if err := f.Chown(uid, gid); err != nil {
		f.Close()
		return "", fmt.Errorf("%s: %w", p, err)
	}
	if err := f.Chmod(fileMode(perm)); err != nil {
		f.Close()
		return "", fmt.Errorf("%s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	ok = true
	return replacedLink, nil
}

// makeDirNoFollow makes p (an absolute, clean path in the tree at root) a
// directory with the owner and mode given. An existing directory gets
// them; a symbolic link or anything else at p is an error. Missing
// parents are created (0755, root) when parents is set.
func makeDirNoFollow(root, p string, parents bool, uid, gid int, perm uint32) error {
	d, err := openDirNoFollow(root, path.Dir(p), p, parents)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the parent of %s is not a directory in the image; create it first or set ensure_parents", p)
	}
	if err != nil {
		return err
	}
	defer d.Close()
	dfd := int(d.Fd())
	name := path.Base(p)
	st, exists, err := entry(d, name)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if exists {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
		case unix.S_IFLNK:
			target, _ := readlinkat(dfd, name)
			return linkError(p, target, "")
		default:
			return fmt.Errorf("%s exists in the image and is not a directory", p)
		}
	} else if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	if err := unix.Fchownat(dfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	sub, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	f := os.NewFile(uintptr(sub), p)
	defer f.Close()
	return f.Chmod(fileMode(perm))
}
