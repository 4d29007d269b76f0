package blueprint

import "strings"

// normalize rewrites values that osbuild accepts in a second spelling into
// the one kiln checks and builds with, so such blueprints keep working and
// mean the same. It runs on a freshly decoded blueprint, before Validate:
//   - a user's home with a trailing slash ("/srv/app/") is that directory
//     without it, as osbuild strips it too.
func (b *Blueprint) normalize() {
	if b == nil || b.Customizations == nil {
		return
	}
	for i := range b.Customizations.User {
		u := &b.Customizations.User[i]
		if u.Home != nil && len(*u.Home) > 1 && strings.HasSuffix(*u.Home, "/") {
			home := strings.TrimRight(*u.Home, "/")
			if home == "" {
				home = "/"
			}
			u.Home = &home
		}
	}
}
