package blueprint

import "strconv"

// Owner is the user or group of a file or directory: a name or a numeric id.
// The zero value means "not set" (root).
type Owner struct {
	Name string
	ID   *int64
}

// IsSet reports whether an owner was given.
func (o Owner) IsSet() bool { return o.Name != "" || o.ID != nil }

// String gives the name, or the id as a decimal number, or "" when unset.
func (o Owner) String() string {
	if o.ID != nil {
		return strconv.FormatInt(*o.ID, 10)
	}
	return o.Name
}
