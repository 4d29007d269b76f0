// Command kiln builds operating-system images from blueprints.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/config"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/telemetry"
)

// app is what every verb shares: resolved once at start-up.
type app struct {
	configPath string
	cacheDir   string
	verbose    bool

	stdout, stderr io.Writer
	cfg            *config.Config
	registry       *distro.Registry
	log            *slog.Logger
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		printError(os.Stderr, err)
		os.Exit(1)
	}
}

// printError prints blueprint problems one per line, other errors as is.
func printError(w io.Writer, err error) {
	var problems blueprint.Errors
	if errors.As(err, &problems) {
		// Keep the context the error was wrapped in ("blueprint web.toml").
		where := strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(err.Error(), problems.Error()), ":\n"))
		if where == "" {
			where = "the blueprint"
		}
		fmt.Fprintf(w, "kiln: %s has %d problem(s):\n", where, len(problems))
		for _, p := range problems {
			fmt.Fprintf(w, "  %s: %s\n", p.Path, p.Message)
		}
		return
	}
	fmt.Fprintf(w, "kiln: %v\n", err)
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "kiln",
		Short:         "Build operating-system images from blueprints",
		Long:          "kiln turns a blueprint (packages, users, hostname, filesystems, files...) into a bootable operating-system image.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup(cmd)
		},
	}
	root.PersistentFlags().StringVar(&a.configPath, "config", "", "configuration file (default "+config.DefaultPath+" when present)")
	root.PersistentFlags().StringVar(&a.cacheDir, "cache-dir", "", "cache directory for repository metadata and packages (overrides the configuration)")
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "log progress to stderr")
	root.AddCommand(
		newListImagesCommand(a),
		newDescribeCommand(a),
		newManifestCommand(a),
		newBlueprintCommand(a),
		newBuildCommand(a),
		newCacheCommand(a),
		newDoctorCommand(a),
		newBootTestCommand(a),
		newServeCommand(a),
		newTokenCommand(a),
		newWorkerTokenCommand(a),
		newIncidentCommand(a),
		newWorkerCommand(a),
		newMigrateCommand(a),
		newComposeCommand(a),
		newUploadCommand(a),
		newVerifyCommand(a),
		newSLOCommand(a),
	)
	return root
}

func (a *app) setup(cmd *cobra.Command) error {
	level := slog.LevelWarn
	if a.verbose {
		level = slog.LevelInfo
	}
	a.log = slog.New(telemetry.NewLogHandler(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level})))
	path, explicit := a.configPath, a.configPath != ""
	if !explicit {
		path = config.DefaultPath
	}
	cfg, err := config.Load(path, explicit)
	if err != nil {
		return err
	}
	if a.cacheDir != "" {
		cfg.CacheDir = a.cacheDir
	}
	a.cfg = cfg
	reg, err := distro.Load()
	if err != nil {
		return fmt.Errorf("loading distribution definitions: %w", err)
	}
	a.registry = reg
	return nil
}
