package blueprint

import (
	"errors"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

var (
	hostLabelRe    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)
	timezoneRe     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9][A-Za-z0-9_+-]*)*$`)
	localeRe       = regexp.MustCompile(`^[a-z]{2,3}(_[A-Z]{2}|_[0-9]{3})?(\.[A-Za-z0-9-]+)?(@[a-z0-9]+)?$`)
	keyboardRe     = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	unitNameRe     = regexp.MustCompile(`^[A-Za-z0-9_:][A-Za-z0-9:_.\\@-]*$`)
	fwServiceRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	fwPortRe       = regexp.MustCompile(`^([0-9]+|[0-9]+-[0-9]+|[a-z][a-z0-9-]*):(tcp|udp|sctp|dccp)$`)
	kernelArgBadRe = regexp.MustCompile("[;|&$`'\"<>\\\\(){}*?!#]")
)

// CheckHostname returns nil for an RFC 1123 host name and otherwise an
// error saying what is wrong and what a host name is. It is the one host
// name rule: the blueprint's validation and the image's hostname stage
// both use it.
func CheckHostname(name string) error {
	if msg := checkHostname(name); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// checkHostname returns a problem message for a name that is not an
// RFC 1123 host name, or "".
func checkHostname(name string) string {
	const fix = "a host name is dot-separated labels of 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen, 253 characters at most"
	if name == "" {
		return "empty; " + fix
	}
	if len(name) > 253 {
		return "is " + strconv.Itoa(len(name)) + " characters long; " + fix
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) > 63 || !hostLabelRe.MatchString(label) {
			return quote(name) + " is not a valid host name; " + fix
		}
	}
	return ""
}

func (v validator) hostname(path, name string) {
	if msg := checkHostname(name); msg != "" {
		v.add(path, "%s", msg)
	}
}

func (v validator) kernel(path string, k *KernelCustomization) {
	if k == nil {
		return
	}
	if k.Name != "" {
		v.packageName(fieldPath(path, "name"), k.Name)
	}
	at := fieldPath(path, "append")
	switch {
	case len(k.Append) > MaxKernelAppend:
		v.add(at, "is %d bytes long; the limit is %d", len(k.Append), MaxKernelAppend)
	case hasControl(k.Append):
		v.add(at, "contains a control character such as a newline; write the arguments on one line, separated by spaces")
	case kernelArgBadRe.MatchString(k.Append):
		v.add(at, "contains %s; kernel arguments here may not hold quotes, backslashes or shell characters such as ; | & $ ` < > ( ) { } * ? ! #", quote(kernelArgBadRe.FindString(k.Append)))
	}
}

func (v validator) timezone(path string, tz *TimezoneCustomization) {
	if tz == nil {
		return
	}
	if tz.Timezone != nil {
		name := *tz.Timezone
		if len(name) > 64 || !timezoneRe.MatchString(name) || strings.Contains(name, "..") {
			v.add(fieldPath(path, "timezone"), `%s is not a time zone name; use an IANA name such as "Europe/Berlin", "America/New_York" or "UTC"`, quote(name))
		}
	}
	at := fieldPath(path, "ntpservers")
	if !v.maxItems(at, len(tz.NTPServers), MaxListItems) {
		return
	}
	for i, s := range tz.NTPServers {
		if _, err := netip.ParseAddr(s); err == nil {
			continue
		}
		if checkHostname(s) != "" {
			v.add(indexPath(at, i), `%s is neither a host name nor an IP address; e.g. "pool.ntp.org" or "192.0.2.1"`, quote(s))
		}
	}
}

func validLocale(s string) bool {
	switch s {
	case "C", "POSIX", "C.UTF-8", "C.utf8":
		return true
	}
	return len(s) <= 64 && localeRe.MatchString(s)
}

func (v validator) locale(path string, l *LocaleCustomization) {
	if l == nil {
		return
	}
	at := fieldPath(path, "languages")
	if v.maxItems(at, len(l.Languages), MaxListItems) {
		for i, lang := range l.Languages {
			if !validLocale(lang) {
				v.add(indexPath(at, i), `%s is not a locale name; use language_COUNTRY.CHARSET such as "en_US.UTF-8", or "C.UTF-8"`, quote(lang))
			}
		}
	}
	if l.Keyboard != nil {
		if k := *l.Keyboard; len(k) > 64 || !keyboardRe.MatchString(k) {
			v.add(fieldPath(path, "keyboard"), `%s is not a keyboard layout name; use letters, digits, '-' and '_', e.g. "us" or "de-latin1"`, quote(k))
		}
	}
}

// canonicalUnit checks a systemd unit name and returns it with the
// ".service" suffix systemctl adds to a bare name, or a problem message.
func canonicalUnit(name string) (string, string) {
	const fix = `use a unit name such as "nginx", "ssh.service", "getty@tty1.service" or "fstrim.timer"`
	if name == "" {
		return "", "empty; " + fix
	}
	if len(name) > 255 || !unitNameRe.MatchString(name) {
		return "", quote(name) + " is not a systemd unit name: use letters, digits and : _ . \\ @ -, not starting with '-' or '.'; " + fix
	}
	unit := name
	hasSuffix := false
	for _, s := range []string{".service", ".socket", ".target", ".timer", ".mount", ".automount", ".path", ".swap", ".slice", ".scope", ".device"} {
		if strings.HasSuffix(name, s) {
			hasSuffix = true
			break
		}
	}
	if !hasSuffix {
		unit += ".service"
	}
	base := unit[:strings.LastIndexByte(unit, '.')]
	if prefix, _, ok := strings.Cut(base, "@"); ok && (prefix == "" || strings.Count(base, "@") > 1) {
		return "", quote(name) + " is not a valid template unit; write NAME@INSTANCE.service, e.g. \"getty@tty1.service\""
	}
	if base == "" {
		return "", quote(name) + " has no name before the unit type; " + fix
	}
	return unit, ""
}

func (v validator) services(path string, s *ServicesCustomization) {
	if s == nil {
		return
	}
	lists := []struct {
		name  string
		units []string
	}{{"enabled", s.Enabled}, {"disabled", s.Disabled}, {"masked", s.Masked}}
	enabled := map[string]bool{}
	for _, l := range lists {
		at := fieldPath(path, l.name)
		if !v.maxItems(at, len(l.units), MaxListItems) {
			continue
		}
		for i, name := range l.units {
			unit, msg := canonicalUnit(name)
			if msg != "" {
				v.add(indexPath(at, i), "%s", msg)
				continue
			}
			if l.name == "enabled" {
				enabled[unit] = true
			} else if enabled[unit] {
				v.add(indexPath(at, i), "%s is also in services.enabled; keep it in one list", quote(name))
			}
		}
	}
}

func (v validator) firewall(path string, fw *FirewallCustomization) {
	if fw == nil {
		return
	}
	at := fieldPath(path, "ports")
	if v.maxItems(at, len(fw.Ports), MaxListItems) {
		for i, port := range fw.Ports {
			if msg := checkFirewallPort(port); msg != "" {
				v.add(indexPath(at, i), "%s", msg)
			}
		}
	}
	if fw.Services == nil {
		return
	}
	sp := fieldPath(path, "services")
	enabled := map[string]bool{}
	for _, l := range []struct {
		name  string
		items []string
	}{{"enabled", fw.Services.Enabled}, {"disabled", fw.Services.Disabled}} {
		at := fieldPath(sp, l.name)
		if !v.maxItems(at, len(l.items), MaxListItems) {
			continue
		}
		for i, name := range l.items {
			switch {
			case len(name) > 64 || !fwServiceRe.MatchString(name):
				v.add(indexPath(at, i), `%s is not a firewall service name; use letters, digits, '-' and '_', as /etc/services writes them, e.g. "ssh" or "kerberos_master"`, quote(name))
			case l.name == "enabled":
				enabled[name] = true
			case enabled[name]:
				v.add(indexPath(at, i), "%s is also in firewall.services.enabled; keep it in one list", quote(name))
			}
		}
	}
}

// checkFirewallPort checks "PORT:PROTO", "START-END:PROTO" or
// "SERVICE:PROTO" and returns a problem message, or "".
func checkFirewallPort(s string) string {
	const fix = `write PORT:PROTOCOL, START-END:PROTOCOL or SERVICE:PROTOCOL with protocol tcp, udp, sctp or dccp, e.g. "22:tcp", "60000-61000:udp", "5000:sctp" or "https:tcp"`
	if len(s) > 64 || !fwPortRe.MatchString(s) {
		return quote(s) + " is not a port; " + fix
	}
	spec, _, _ := strings.Cut(s, ":")
	if spec[0] < '0' || spec[0] > '9' {
		return ""
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	if !isRange {
		hi = lo
	}
	start, err1 := strconv.Atoi(lo)
	end, err2 := strconv.Atoi(hi)
	switch {
	case err1 != nil || err2 != nil || start < 1 || end < 1 || start > 65535 || end > 65535:
		return quote(s) + " has a port outside 1-65535"
	case start > end:
		return quote(s) + " has a range that ends before it starts; write START-END with START <= END"
	}
	return ""
}
