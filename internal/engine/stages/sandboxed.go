package stages

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-project/kiln/internal/engine/sandbox"
)

// Sandboxed returns the Chroot and Sandbox functions of an Env whose tree
// is tree: every command runs in the sandbox (see internal/engine/sandbox)
// with extraEnv after its default environment and its output in log.
// Chroot runs only a command of the image's own packages, named by its
// absolute path: a file that a package of the tree installed (as dpkg
// lists it) and that is a regular executable, never something found on a
// PATH that a blueprint or a package could have planted.
func Sandboxed(tree string, log io.Writer, extraEnv []string) (
	chroot func(ctx context.Context, stdin io.Reader, argv ...string) error,
	sb func(ctx context.Context, o sandbox.Options, argv ...string) error,
) {
	// A stage runs the same tool many times (useradd per user): dpkg's
	// lists are read once per tool, not once per call.
	packaged := map[string]bool{}
	chroot = func(ctx context.Context, stdin io.Reader, argv ...string) error {
		if len(argv) == 0 {
			return fmt.Errorf("no command to run in the image tree")
		}
		if !packaged[argv[0]] {
			if err := PackagedCommand(tree, argv[0]); err != nil {
				return err
			}
			packaged[argv[0]] = true
		}
		return sandbox.Run(ctx, tree, stdin, log, extraEnv, argv...)
	}
	sb = func(ctx context.Context, o sandbox.Options, argv ...string) error {
		o.Root = tree
		if o.Out == nil {
			o.Out = log
		}
		return sandbox.Exec(ctx, o, argv...)
	}
	return chroot, sb
}

// PackagedCommand checks that cmd, an absolute path in the tree at root,
// is a regular executable file that one of the tree's packages installed.
func PackagedCommand(root, cmd string) error {
	if !path.IsAbs(cmd) || path.Clean(cmd) != cmd {
		return fmt.Errorf("%q: commands in the image tree are run by clean absolute path only", cmd)
	}
	dir, err := ResolveInTree(root, path.Dir(cmd))
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	fi, err := os.Lstat(filepath.Join(dir, path.Base(cmd)))
	if err != nil {
		return fmt.Errorf("%s is not in the image: %w", cmd, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s in the image is not a regular executable file (%s)", cmd, fi.Mode())
	}
	names := map[string]bool{cmd: true}
	// Merged /usr: dpkg may list /bin/x for /usr/bin/x and the reverse.
	for _, d := range []string{"/bin/", "/sbin/", "/lib/"} {
		if rest, ok := strings.CutPrefix(cmd, "/usr"+d); ok {
			names[d+rest] = true
		} else if rest, ok := strings.CutPrefix(cmd, d); ok {
			names["/usr"+d+rest] = true
		}
	}
	info, err := ResolveInTree(root, "/var/lib/dpkg/info")
	if err != nil {
		return err
	}
	lists, err := filepath.Glob(filepath.Join(info, "*.list"))
	if err != nil {
		return err
	}
	for _, l := range lists {
		found, err := listsOneOf(l, names)
		if err != nil {
			return err
		}
		if found {
			return nil
		}
	}
	return fmt.Errorf("%s in the image belongs to no installed package; kiln runs only packaged tools in the image tree", cmd)
}

func listsOneOf(list string, names map[string]bool) (bool, error) {
	f, err := os.Open(list)
	if err != nil {
		if os.IsNotExist(err) {
			return false, nil
		}
		return false, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Mode().Type()&fs.ModeType != 0 {
		return false, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if names[sc.Text()] {
			return true, nil
		}
	}
	return false, sc.Err()
}
