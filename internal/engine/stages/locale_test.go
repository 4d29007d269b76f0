package stages

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestLocaleDebianTree(t *testing.T) {
	t.Parallel()
	tree := debianTree(t)
	env, _ := testEnv(t, tree)
	s := &Locale{Opts: manifest.Locale{Languages: []string{"de_DE.UTF-8", "en_US", "sr_RS.utf8@latin", "C.UTF-8"}, Default: "de_DE.UTF-8"}}
	require.NoError(t, s.Run(context.Background(), env))
	gen := readTree(t, tree, "/etc/locale.gen")
	for _, line := range []string{"de_DE.UTF-8 UTF-8", "en_US.UTF-8 UTF-8", "sr_RS@latin UTF-8"} {
		require.Contains(t, "\n"+gen, "\n"+line+"\n")
		require.NotContains(t, gen, "# "+line+"\n")
	}
	require.Contains(t, gen, "# fr_FR.UTF-8 UTF-8\n", "other locales stay off")
	all := inTree(t, tree, "locale", "-a")
	for _, l := range []string{"de_DE.utf8", "en_US.utf8", "sr_RS.utf8@latin", "C.utf8"} {
		require.Contains(t, strings.Fields(all), l)
	}
	require.Equal(t, "LANG=de_DE.UTF-8\n", readTree(t, tree, "/etc/default/locale"))

	// Running again changes nothing.
	require.NoError(t, s.Run(context.Background(), env))
	require.Equal(t, gen, readTree(t, tree, "/etc/locale.gen"))

	t.Run("unknown locale", func(t *testing.T) {
		err := (&Locale{Opts: manifest.Locale{Languages: []string{"xx_YY.UTF-8"}, Default: "xx_YY.UTF-8"}}).Run(context.Background(), env)
		require.ErrorContains(t, err, "not one the image's glibc can generate")
	})
}

func TestLocale(t *testing.T) {
	t.Parallel()
	t.Run("C only needs nothing generated", func(t *testing.T) {
		t.Parallel()
		tree := t.TempDir()
		env, _ := fileEnv(t, tree) // fails on any command
		require.NoError(t, (&Locale{Opts: manifest.Locale{Languages: []string{"C.UTF-8"}, Default: "C.UTF-8"}}).Run(context.Background(), env))
		require.Equal(t, "LANG=C.UTF-8\n", readTree(t, tree, "/etc/default/locale"))
	})
	t.Run("no locales package", func(t *testing.T) {
		t.Parallel()
		env, _ := fileEnv(t, t.TempDir())
		err := (&Locale{Opts: manifest.Locale{Languages: []string{"en_US.UTF-8"}, Default: "en_US.UTF-8"}}).Run(context.Background(), env)
		require.ErrorContains(t, err, "add the locales package")
	})
	for _, tc := range []struct {
		name string
		opts manifest.Locale
		want string
	}{
		{"no default", manifest.Locale{Languages: []string{"en_US.UTF-8"}}, "no default"},
		{"injection", manifest.Locale{Languages: []string{"en_US.UTF-8\nLC_ALL=x"}, Default: "C.UTF-8"}, "not a locale name"},
		{"path", manifest.Locale{Languages: []string{"../../etc/shadow"}, Default: "C.UTF-8"}, "not a locale name"},
		{"bad default", manifest.Locale{Languages: []string{"C.UTF-8"}, Default: "en US"}, "not a locale name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := fileEnv(t, t.TempDir())
			require.ErrorContains(t, (&Locale{Opts: tc.opts}).Run(context.Background(), env), tc.want)
		})
	}
}
