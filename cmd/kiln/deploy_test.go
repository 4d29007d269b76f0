package main

// The files under deploy/ name kiln's subcommands, flags, environment
// variables, ports and metrics. These tests hold them to the binary: a
// renamed flag, a dropped environment variable or a metric that no longer
// exists fails here, not in a cluster.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/metrics/metricstest"
)

// deployDir is the repository's deploy/ directory, seen from cmd/kiln.
const deployDir = "../../deploy"

// ---- the binary: subcommands, flags, environment variables, metrics ----

// parseInvocation finds the subcommand argv names (argv[0] is the program,
// which must be kiln) and parses the rest with that subcommand's flags, its
// parents' persistent flags included, as the binary would. It reports an
// unknown subcommand, an unknown flag, a value that does not parse or
// positional arguments the subcommand refuses, and returns nil then.
func parseInvocation(t testing.TB, where string, argv []string) *cobra.Command {
	t.Helper()
	if len(argv) < 2 {
		t.Errorf("%s: %q names no kiln subcommand", where, argv)
		return nil
	}
	if filepath.Base(argv[0]) != "kiln" {
		t.Errorf("%s: runs %q, not kiln", where, argv[0])
		return nil
	}
	root := newRootCommand(io.Discard, io.Discard)
	cmd, rest, err := root.Find(argv[1:])
	if err != nil || cmd == root || !cmd.Runnable() {
		t.Errorf("%s: %q is not a kiln subcommand (err: %v)", where, strings.Join(argv[1:], " "), err)
		return nil
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: kiln %s: %v", where, cmd.Name(), err)
		return nil
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		t.Errorf("%s: kiln %s: %v", where, cmd.Name(), err)
		return nil
	}
	return cmd
}

// flagValue is a parsed flag's value (its default when argv did not set it).
func flagValue(t *testing.T, cmd *cobra.Command, name string) string {
	t.Helper()
	f := cmd.Flags().Lookup(name)
	require.NotNil(t, f, "kiln %s has no --%s", cmd.Name(), name)
	return f.Value.String()
}

// flagSet reports whether argv set the flag.
func flagSet(cmd *cobra.Command, name string) bool {
	f := cmd.Flags().Lookup(name)
	return f != nil && f.Changed
}

var envInUsage = regexp.MustCompile(`\$(KILN_[A-Z0-9_]+)`)

// kilnEnvVars returns the KILN_* environment variables the binary reads:
// those a flag takes its default from, which its usage names as
// "$KILN_...".
func kilnEnvVars(t *testing.T) map[string]bool {
	t.Helper()
	vars := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		visit := func(f *pflag.Flag) {
			for _, m := range envInUsage.FindAllStringSubmatch(f.Usage, -1) {
				vars[m[1]] = true
			}
		}
		c.Flags().VisitAll(visit)
		c.PersistentFlags().VisitAll(visit)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand(io.Discard, io.Discard))
	require.NotEmpty(t, vars, "no flag names a $KILN_ variable")
	return vars
}

// exportedMetrics returns every series name kiln serve's and kiln
// worker's /metrics can show (see metricstest.Exported).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names, err := metricstest.Exported()
	require.NoError(t, err)
	return names
}

// ---- Kubernetes ----

type objectMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type k8sObject struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   objectMeta        `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	// raw is the document, for decoding into a kind's own shape.
	raw map[string]any
	// file is where it came from.
	file string
}

type deployment struct {
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     podSpec    `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64      `yaml:"terminationGracePeriodSeconds"`
	InitContainers                []container `yaml:"initContainers"`
	Containers                    []container `yaml:"containers"`
}

type container struct {
	Name           string          `yaml:"name"`
	Image          string          `yaml:"image"`
	Command        []string        `yaml:"command"`
	Args           []string        `yaml:"args"`
	Env            []envVar        `yaml:"env"`
	EnvFrom        []envFromSource `yaml:"envFrom"`
	Ports          []containerPort `yaml:"ports"`
	StartupProbe   *probe          `yaml:"startupProbe"`
	ReadinessProbe *probe          `yaml:"readinessProbe"`
	LivenessProbe  *probe          `yaml:"livenessProbe"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
		SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type envFromSource struct {
	ConfigMapRef *keyRef `yaml:"configMapRef"`
	SecretRef    *keyRef `yaml:"secretRef"`
}

type containerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sService struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type podDisruptionBudget struct {
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

type kustomization struct {
	Resources []string `yaml:"resources"`
}

// yamlDocuments decodes every document of a YAML file (empty ones left out).
func yamlDocuments(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "%s", path)
		if len(doc) > 0 {
			docs = append(docs, doc)
		}
	}
	require.NotEmpty(t, docs, "%s holds no YAML document", path)
	return docs
}

// as decodes a document into a kind's shape.
func as[T any](t *testing.T, o k8sObject) T {
	t.Helper()
	b, err := yaml.Marshal(o.raw)
	require.NoError(t, err)
	var v T
	require.NoError(t, yaml.Unmarshal(b, &v), "%s: %s %s", o.file, o.Kind, o.Metadata.Name)
	return v
}

// kubernetesObjects reads every manifest under deploy/kubernetes, and the
// kustomization apart.
func kubernetesObjects(t *testing.T) ([]k8sObject, kustomization) {
	t.Helper()
	dir := filepath.Join(deployDir, "kubernetes")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var objs []k8sObject
	var kust kustomization
	for _, f := range files {
		for _, doc := range yamlDocuments(t, f) {
			o := k8sObject{raw: doc, file: filepath.Base(f)}
			o = as[k8sObject](t, o)
			o.raw, o.file = doc, filepath.Base(f)
			if o.Kind == "Kustomization" {
				kust = as[kustomization](t, o)
				continue
			}
			require.NotEmpty(t, o.APIVersion, "%s: a document without apiVersion", f)
			require.NotEmpty(t, o.Kind, "%s: a document without kind", f)
			require.NotEmpty(t, o.Metadata.Name, "%s: a %s without a name", f, o.Kind)
			objs = append(objs, o)
		}
	}
	return objs, kust
}

func byKind(objs []k8sObject, kind string) []k8sObject {
	var out []k8sObject
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// selects reports whether a selector's labels all appear in labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// resolvePort turns a probe's or Service's port (a number or a container
// port's name) into a number; 0 when the name is not one of ports.
func resolvePort(port any, ports []containerPort) int {
	s := fmt.Sprint(port)
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	for _, p := range ports {
		if p.Name == s {
			return p.ContainerPort
		}
	}
	return 0
}

// listenPort is the port of a --listen address.
func listenPort(t *testing.T, where, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, "%s: --listen %q", where, addr)
	n, err := strconv.Atoi(port)
	require.NoError(t, err, "%s: --listen %q", where, addr)
	return n
}

func TestDeployKubernetesKustomizationListsEveryFile(t *testing.T) {
	t.Parallel()
	_, kust := kubernetesObjects(t)
	files, err := filepath.Glob(filepath.Join(deployDir, "kubernetes", "*.yaml"))
	require.NoError(t, err)
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	got := slices.Clone(kust.Resources)
	slices.Sort(got)
	assert.Equal(t, want, got, "kustomization.yaml's resources are every other file of deploy/kubernetes")
}

func TestDeployKubernetesContainers(t *testing.T) {
	t.Parallel()
	objs, _ := kubernetesObjects(t)
	env := kilnEnvVars(t)
	keys := map[string]map[string]bool{} // "ConfigMap/name" → its keys
	for _, o := range objs {
		if o.Kind != "ConfigMap" && o.Kind != "Secret" {
			continue
		}
		ks := map[string]bool{}
		for _, m := range []map[string]string{o.Data, o.StringData} {
			for k := range m {
				ks[k] = true
				if strings.HasPrefix(k, "KILN_") {
					assert.True(t, env[k], "%s: %s %s sets %s, which kiln does not read", o.file, o.Kind, o.Metadata.Name, k)
				}
			}
		}
		keys[o.Kind+"/"+o.Metadata.Name] = ks
	}

	deployments := byKind(objs, "Deployment")
	require.NotEmpty(t, deployments)
	subcommands := map[string]int{}
	for _, o := range deployments {
		d := as[deployment](t, o)
		pod := d.Spec.Template.Spec
		assert.True(t, selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels),
			"%s: Deployment %s's selector does not select its own pods", o.file, o.Metadata.Name)
		require.NotEmpty(t, pod.Containers, "%s: Deployment %s has no containers", o.file, o.Metadata.Name)
		for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
			where := fmt.Sprintf("%s: %s/%s", o.file, o.Metadata.Name, c.Name)
			assert.NotEmpty(t, c.Image, "%s: no image", where)
			require.NotEmpty(t, c.Command, "%s: no command: name the kiln binary rather than rely on the image's entrypoint", where)

			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "KILN_") {
					assert.True(t, env[e.Name], "%s: sets %s, which kiln does not read (it reads %v)", where, e.Name, sortedKeys(env))
				}
				if e.ValueFrom == nil {
					continue
				}
				for kind, ref := range map[string]*keyRef{"ConfigMap": e.ValueFrom.ConfigMapKeyRef, "Secret": e.ValueFrom.SecretKeyRef} {
					if ref != nil {
						ks, ok := keys[kind+"/"+ref.Name]
						assert.True(t, ok, "%s: %s takes its value from %s %s, which deploy/kubernetes does not define", where, e.Name, kind, ref.Name)
						assert.True(t, !ok || ks[ref.Key], "%s: %s takes its value from key %s, which %s %s lacks", where, e.Name, ref.Key, kind, ref.Name)
					}
				}
			}
			for _, from := range c.EnvFrom {
				for kind, ref := range map[string]*keyRef{"ConfigMap": from.ConfigMapRef, "Secret": from.SecretRef} {
					if ref != nil {
						_, ok := keys[kind+"/"+ref.Name]
						assert.True(t, ok, "%s: envFrom %s %s, which deploy/kubernetes does not define", where, kind, ref.Name)
					}
				}
			}

			cmd := parseInvocation(t, where, append(slices.Clone(c.Command), c.Args...))
			if cmd == nil {
				continue
			}
			subcommands[cmd.CommandPath()]++
			if cmd.Flags().Lookup("listen") != nil {
				checkListenAndProbes(t, where, cmd, c)
			}
			if cmd.Name() == "worker" {
				grace, err := time.ParseDuration(flagValue(t, cmd, "grace"))
				require.NoError(t, err, "%s: --grace", where)
				require.NotNil(t, pod.TerminationGracePeriodSeconds, "%s: no terminationGracePeriodSeconds: the default 30 s cuts every build short", where)
				assert.Greater(t, time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second, grace,
					"%s: terminationGracePeriodSeconds must exceed --grace, or builds are killed before their job is handed back", where)
			}
		}
	}
	assert.Positive(t, subcommands["kiln serve"], "no Deployment runs kiln serve")
	assert.Positive(t, subcommands["kiln worker"], "no Deployment runs kiln worker")
}

// checkListenAndProbes checks that a container listens on all addresses
// and that its port and probes are --listen's port.
func checkListenAndProbes(t *testing.T, where string, cmd *cobra.Command, c container) {
	t.Helper()
	if !flagSet(cmd, "listen") {
		if cmd.Name() == "serve" {
			t.Errorf("%s: kiln serve without --listen serves on loopback only", where)
		}
		return
	}
	addr := flagValue(t, cmd, "listen")
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		t.Errorf("%s: --listen %s is not reachable from outside the pod", where, addr)
	}
	port := listenPort(t, where, addr)
	assert.True(t, slices.ContainsFunc(c.Ports, func(p containerPort) bool { return p.ContainerPort == port }),
		"%s: no containerPort %d (the port of --listen %s)", where, port, addr)
	tests := []struct {
		name     string
		probe    *probe
		paths    []string
		required bool
	}{
		{"readinessProbe", c.ReadinessProbe, []string{"/readyz"}, true},
		{"livenessProbe", c.LivenessProbe, []string{"/livez"}, true},
		{"startupProbe", c.StartupProbe, []string{"/livez", "/readyz"}, false},
	}
	for _, tc := range tests {
		if tc.probe == nil {
			assert.False(t, tc.required, "%s: no %s", where, tc.name)
			continue
		}
		if !assert.NotNil(t, tc.probe.HTTPGet, "%s: %s is not an httpGet probe", where, tc.name) {
			continue
		}
		assert.Contains(t, tc.paths, tc.probe.HTTPGet.Path, "%s: %s path", where, tc.name)
		assert.Equal(t, port, resolvePort(tc.probe.HTTPGet.Port, c.Ports),
			"%s: %s is on port %v; --listen %s serves on %d", where, tc.name, tc.probe.HTTPGet.Port, addr, port)
	}
}

func TestDeployKubernetesServicesAndBudgets(t *testing.T) {
	t.Parallel()
	objs, _ := kubernetesObjects(t)
	type podTemplate struct {
		name   string
		labels map[string]string
		pod    podSpec
	}
	var templates []podTemplate
	for _, o := range byKind(objs, "Deployment") {
		d := as[deployment](t, o)
		templates = append(templates, podTemplate{o.Metadata.Name, d.Spec.Template.Metadata.Labels, d.Spec.Template.Spec})
	}

	services := byKind(objs, "Service")
	require.NotEmpty(t, services)
	for _, o := range services {
		s := as[k8sService](t, o)
		where := fmt.Sprintf("%s: Service %s", o.file, o.Metadata.Name)
		var targets []podTemplate
		for _, tpl := range templates {
			if selects(s.Spec.Selector, tpl.labels) {
				targets = append(targets, tpl)
			}
		}
		require.NotEmpty(t, targets, "%s selects no Deployment's pods", where)
		require.NotEmpty(t, s.Spec.Ports, "%s has no ports", where)
		for _, tpl := range targets {
			for _, p := range s.Spec.Ports {
				target := p.TargetPort
				if target == nil {
					target = p.Port
				}
				served := false
				for _, c := range tpl.pod.Containers {
					cmd := parseInvocation(t, where, append(slices.Clone(c.Command), c.Args...))
					if cmd == nil || cmd.Name() != "serve" {
						continue
					}
					n := resolvePort(target, c.Ports)
					served = served || (n != 0 && n == listenPort(t, where, flagValue(t, cmd, "listen")))
				}
				assert.True(t, served, "%s: port %s targets %v, which no kiln serve container of %s listens on", where, p.Name, target, tpl.name)
			}
		}
	}

	budgets := byKind(objs, "PodDisruptionBudget")
	assert.NotEmpty(t, budgets)
	for _, o := range budgets {
		b := as[podDisruptionBudget](t, o)
		assert.True(t, slices.ContainsFunc(templates, func(tpl podTemplate) bool { return selects(b.Spec.Selector.MatchLabels, tpl.labels) }),
			"%s: PodDisruptionBudget %s selects no Deployment's pods", o.file, o.Metadata.Name)
	}
}

// ---- systemd ----

// unitFile is a systemd unit: section → key → values in file order.
type unitFile map[string]map[string][]string

// parseUnit reads a unit file: [sections], Key=Value lines, comments
// (# and ;) and lines continued with a trailing backslash.
func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	pending := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: %q is not Key=Value", path, line)
		require.NotEmpty(t, section, "%s: %q before any section", path, line)
		u[section][strings.TrimSpace(key)] = append(u[section][strings.TrimSpace(key)], strings.TrimSpace(value))
	}
	require.NoError(t, sc.Err())
	return u
}

// parseEnvFile reads KEY=VALUE lines as systemd's EnvironmentFile= does.
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: %q is not KEY=VALUE", path, line)
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[strings.TrimSpace(k)] = v
	}
	return env
}

// execArgv splits an ExecStart= line into words as systemd does: its
// prefixes (-@:+!) dropped, quotes honoured, "$VAR" replaced by VAR's value
// split at whitespace, "${VAR}" by its value as one word.
func execArgv(line string, env map[string]string) []string {
	line = strings.TrimLeft(line, "-@:+!")
	var words []string
	var cur strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(ch)
		case ch == '"' || ch == '\'':
			quote, inWord = ch, true
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	braced := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			out = append(out, strings.Fields(env[w[1:]])...)
			continue
		}
		out = append(out, braced.ReplaceAllStringFunc(w, func(m string) string { return env[m[2:len(m)-1]] }))
	}
	return out
}

// systemdSpan parses a systemd time span: "90", "90s", "11min", "1h 30min".
func systemdSpan(s string) (time.Duration, error) {
	units := map[string]time.Duration{"": time.Second, "s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour, "ms": time.Millisecond}
	parts := regexp.MustCompile(`(\d+)\s*([a-z]*)`).FindAllStringSubmatch(s, -1)
	if len(parts) == 0 || s == "infinity" {
		return 0, fmt.Errorf("time span %q", s)
	}
	var d time.Duration
	for _, p := range parts {
		n, _ := strconv.Atoi(p[1])
		u, ok := units[p[2]]
		if !ok {
			return 0, fmt.Errorf("time span %q: unit %q", s, p[2])
		}
		d += time.Duration(n) * u
	}
	return d, nil
}

func TestDeploySystemdUnits(t *testing.T) {
	t.Parallel()
	env := kilnEnvVars(t)
	dir := filepath.Join(deployDir, "systemd")
	tests := []struct {
		unit       string
		subcommand string
		root       bool // builds as root
	}{
		{"kiln-serve.service", "serve", false},
		{"kiln-worker@.service", "worker", true},
	}
	units, err := filepath.Glob(filepath.Join(dir, "*.service"))
	require.NoError(t, err)
	require.Len(t, units, len(tests), "a test case for every unit in deploy/systemd")
	for _, tc := range tests {
		t.Run(tc.unit, func(t *testing.T) {
			u := parseUnit(t, filepath.Join(dir, tc.unit))
			svc := u["Service"]
			require.NotNil(t, svc, "no [Service] section")
			assert.NotEmpty(t, u["Install"]["WantedBy"], "no WantedBy=")
			assert.Contains(t, []string{"on-failure", "always", "on-abnormal"}, last(svc["Restart"]), "Restart=")

			// Each EnvironmentFile= has an example beside the unit; the
			// KILN_ variables in it are ones kiln reads.
			vars := map[string]string{}
			for _, ef := range svc["EnvironmentFile"] {
				if strings.HasPrefix(ef, "-") {
					continue // optional, e.g. a per-instance override
				}
				example := filepath.Join(dir, filepath.Base(ef)+".example")
				require.FileExists(t, example, "EnvironmentFile=%s has no example", ef)
				for k, v := range parseEnvFile(t, example) {
					vars[k] = v
					if strings.HasPrefix(k, "KILN_") {
						assert.True(t, env[k], "%s sets %s, which kiln does not read", filepath.Base(example), k)
					}
				}
			}

			require.Len(t, svc["ExecStart"], 1)
			argv := execArgv(svc["ExecStart"][0], vars)
			cmd := parseInvocation(t, tc.unit+": ExecStart", argv)
			require.NotNil(t, cmd)
			assert.Equal(t, tc.subcommand, cmd.Name())

			if tc.root {
				assert.Contains(t, []string{"", "root"}, last(svc["User"]), "the worker builds as root")
			} else {
				assert.NotContains(t, []string{"", "root"}, last(svc["User"]), "kiln serve needs no root")
			}
			if cmd.Name() == "worker" {
				grace, err := time.ParseDuration(flagValue(t, cmd, "grace"))
				require.NoError(t, err)
				stop, err := systemdSpan(last(svc["TimeoutStopSec"]))
				require.NoError(t, err, "TimeoutStopSec=")
				assert.Greater(t, stop, grace, "TimeoutStopSec must exceed --grace, or systemd kills builds before their job is handed back")
			}
		})
	}
}

func last(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[len(values)-1]
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ---- Prometheus ----

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	kilnMetric = regexp.MustCompile(`\bkiln_[a-zA-Z0-9_:]+`)
	// kilnRecorded is the name of a series a kiln recording rule makes.
	kilnRecorded = regexp.MustCompile(`\bkiln:[a-zA-Z0-9_:]+`)
)

// metricsIn returns the kiln_* metric names an expression uses (label
// values and other strings left out).
func metricsIn(expr string) []string {
	return kilnMetric.FindAllString(promString.ReplaceAllString(expr, `""`), -1)
}

// recordedIn returns the kiln:* recorded series an expression uses.
func recordedIn(expr string) []string {
	return kilnRecorded.FindAllString(promString.ReplaceAllString(expr, `""`), -1)
}

func TestDeployPrometheusRules(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	files, err := filepath.Glob(filepath.Join(deployDir, "prometheus", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	seen := map[string]bool{}
	used := map[string]bool{}
	// recording rules: the kiln metrics each recorded name reads, and the
	// recorded names the alerts read.
	records := map[string][]string{}
	var alertRecords []string
	for _, f := range files {
		for _, doc := range yamlDocuments(t, f) {
			b, err := yaml.Marshal(doc)
			require.NoError(t, err)
			var rf ruleFile
			require.NoError(t, yaml.Unmarshal(b, &rf), f)
			require.NotEmpty(t, rf.Groups, "%s: no rule groups", f)
			for _, g := range rf.Groups {
				require.NotEmpty(t, g.Rules, "%s: group %s has no rules", f, g.Name)
				for _, r := range g.Rules {
					if r.Record != "" {
						where := fmt.Sprintf("%s: record %s", filepath.Base(f), r.Record)
						assert.True(t, strings.HasPrefix(r.Record, "kiln:"), "%s: recorded names start with kiln: (kiln_ is for what kiln exports)", where)
						for _, m := range metricsIn(r.Expr) {
							assert.True(t, exported[m], "%s: uses %s, which kiln does not export", where, m)
							records[r.Record] = append(records[r.Record], m)
						}
						for _, rec := range recordedIn(r.Expr) {
							records[r.Record] = append(records[r.Record], rec)
						}
						continue
					}
					where := fmt.Sprintf("%s: %s", filepath.Base(f), r.Alert)
					require.NotEmpty(t, r.Alert, "%s: group %s: a rule that is neither alert nor record", f, g.Name)
					assert.False(t, seen[r.Alert], "%s: alert name used twice", where)
					seen[r.Alert] = true
					assert.NotEmpty(t, strings.TrimSpace(r.Expr), "%s: no expr", where)
					if d, err := time.ParseDuration(r.For); assert.NoError(t, err, "%s: for", where) {
						assert.Positive(t, d, "%s: for", where)
					}
					assert.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], "%s: labels.severity", where)
					assert.NotEmpty(t, r.Annotations["summary"], "%s: annotations.summary", where)
					assert.Equal(t, "https://github.com/kiln-project/kiln/blob/main/docs/runbooks/"+r.Alert+".md", r.Annotations["runbook_url"], "%s: annotations.runbook_url", where)
					for _, m := range metricsIn(r.Expr) {
						used[m] = true
						assert.True(t, exported[m], "%s: uses %s, which kiln does not export", where, m)
					}
					alertRecords = append(alertRecords, recordedIn(r.Expr)...)
				}
			}
		}
	}
	// What the alerts read through recording rules counts as watched.
	followed := map[string]bool{}
	for len(alertRecords) > 0 {
		rec := alertRecords[0]
		alertRecords = alertRecords[1:]
		if followed[rec] {
			continue
		}
		followed[rec] = true
		reads, ok := records[rec]
		assert.True(t, ok, "an alert reads %s, which no rule records", rec)
		for _, m := range reads {
			if strings.HasPrefix(m, "kiln:") {
				alertRecords = append(alertRecords, m)
			} else {
				used[m] = true
			}
		}
	}
	// The compose failure ratio, API errors and latency and the queue wait
	// are watched by the SLO alerts (slo.yaml), the rest by alerts.yaml.
	for _, m := range []string{"kiln_jobs", "kiln_workers_active", "kiln_http_request_duration_seconds_count",
		"kiln_http_request_duration_seconds_bucket", "kiln_artifacts_bytes", "kiln_composes_finished_total",
		"kiln_job_queue_wait_seconds_bucket", "kiln_job_duration_seconds_bucket"} {
		assert.True(t, used[m], "no alert watches %s", m)
	}
}

// The parsers above decide what the tests accept: test them on what they
// must refuse.
func TestDeployHelpers(t *testing.T) {
	t.Parallel()
	assert.Equal(t, []string{"kiln_jobs", "kiln_job_duration_seconds_count"},
		metricsIn(`sum(kiln_jobs{job="kiln_x", arch='kiln_y'}) / rate(kiln_job_duration_seconds_count[5m])`))
	assert.Equal(t, []string{"kiln:slo_error_ratio:rate1h"},
		recordedIn(`kiln:slo_error_ratio:rate1h{slo="kiln:x"} > 0.1 and kiln_jobs`))
	assert.Equal(t, []string{"/usr/bin/kiln", "serve", "--listen=:1", "--quota=5", "--rate-limit=1", "a b"},
		execArgv(`-/usr/bin/kiln serve --listen=${L} $ARGS "a b"`, map[string]string{"L": ":1", "ARGS": "--quota=5  --rate-limit=1"}))
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"90", 90 * time.Second}, {"11min", 11 * time.Minute}, {"1h 30min", 90 * time.Minute}} {
		d, err := systemdSpan(tc.in)
		require.NoError(t, err)
		assert.Equal(t, tc.want, d, tc.in)
	}

	// parseInvocation reports, through a recording T, what is wrong.
	refused := []struct {
		argv []string
		want string
	}{
		{[]string{"kiln", "no-such-command"}, "not a kiln subcommand"},
		{[]string{"kiln", "serve", "--no-such-flag"}, "unknown flag"},
		{[]string{"kiln", "serve", "--lease=soon"}, "invalid argument"},
		{[]string{"kiln", "serve", "extra"}, "unknown command"},
		{[]string{"sh", "-c", "kiln serve"}, "not kiln"},
	}
	for _, tc := range refused {
		rec := &recorder{TB: t}
		assert.Nil(t, parseInvocation(rec, "case", tc.argv), "%q", tc.argv)
		assert.Contains(t, rec.String(), tc.want, "%q", tc.argv)
	}
	rec := &recorder{TB: t}
	cmd := parseInvocation(rec, "case", []string{"kiln", "-v", "--cache-dir=/c", "serve", "--listen=:9"})
	require.NotNil(t, cmd, rec.String())
	assert.Empty(t, rec.String())
	assert.Equal(t, ":9", flagValue(t, cmd, "listen"))
}

// recorder keeps the errors reported to it instead of failing the test.
type recorder struct {
	testing.TB
	bytes.Buffer
}

func (r *recorder) Errorf(format string, args ...any) { fmt.Fprintf(&r.Buffer, format+"\n", args...) }
