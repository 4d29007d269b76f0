package main

import (
	"fmt"
	"path/filepath"

	"github.com/kiln-project/kiln/internal/aptsources"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/depsolve/apt"
	"github.com/kiln-project/kiln/internal/distro"
)

// mirrors works out the mirror of each role: --mirror flags first, then the
// configuration file, then the host's apt sources.
func (a *app) mirrors(d *distro.Distro, flags []string) (map[string]string, error) {
	out := map[string]string{}
	for role, uri := range a.cfg.Mirrors {
		out[role] = uri
	}
	fromFlags, err := parseMirrorFlags(flags)
	if err != nil {
		return nil, err
	}
	for role, uri := range fromFlags {
		out[role] = uri
	}
	if out["debian"] != "" && out["debian-security"] != "" {
		return out, nil
	}
	entries, err := aptsources.Read("/")
	if err != nil {
		return nil, fmt.Errorf("reading the host's apt sources to find a mirror: %w (or pass --mirror)", err)
	}
	host, err := aptsources.FindDebianMirrors(entries, []string{d.Codename})
	if err != nil {
		if out["debian"] != "" {
			return out, nil
		}
		return nil, err
	}
	if out["debian"] == "" {
		out["debian"] = host.Main
		a.log.Info("mirror from the host's apt sources", "role", "debian", "uri", host.Main, "from", host.MainFrom)
	}
	if out["debian-security"] == "" && host.Security != "" {
		out["debian-security"] = host.Security
		a.log.Info("mirror from the host's apt sources", "role", "debian-security", "uri", host.Security, "from", host.SecurityFrom)
	}
	return out, nil
}

// resolver returns the apt solver with the configured cache.
func (a *app) resolver(offline, refresh bool) (depsolve.Resolver, error) {
	return apt.New(apt.Config{
		CacheDir: filepath.Join(a.cfg.CacheDir),
		MaxAge:   a.cfg.Depsolve.MetadataMaxAge.Duration,
		Timeout:  a.cfg.Depsolve.Timeout.Duration,
		Offline:  offline,
		Refresh:  refresh,
		Log:      a.log,
	})
}

// workerDeps are what a worker needs to build: the mirrors (from the
// configuration, else the host's apt sources) and the package resolver.
func (a *app) workerDeps() (map[string]string, depsolve.Resolver, error) {
	mirrors := a.cfg.Mirrors
	if len(mirrors) == 0 {
		d, err := a.registry.Distro(defaultDistro)
		if err != nil {
			return nil, nil, err
		}
		if mirrors, err = a.mirrors(d, nil); err != nil {
			return nil, nil, err
		}
	}
	r, err := a.resolver(false, false)
	if err != nil {
		return nil, nil, err
	}
	return mirrors, r, nil
}
