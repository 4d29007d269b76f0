package apimodel

import (
	"bytes"
	"encoding/json"
	"strings"
)

// StatusDetails is a failed compose's error details: free-form text, or,
// when the compose failed on fields of its request, one problem each.
type StatusDetails struct {
	Text     string
	Problems []StatusProblem
}

// StatusProblem is one problem with a compose's request that failed it:
// the request's field and the detail, which starts with it.
type StatusProblem struct {
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail"`
}

// UnmarshalJSON reads either shape.
func (d *StatusDetails) UnmarshalJSON(b []byte) error {
	*d = StatusDetails{}
	switch b = bytes.TrimSpace(b); {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '[':
		return json.Unmarshal(b, &d.Problems)
	default:
		return json.Unmarshal(b, &d.Text)
	}
}

// MarshalJSON writes the problems when there are any, else the text.
func (d StatusDetails) MarshalJSON() ([]byte, error) {
	if len(d.Problems) > 0 {
		return json.Marshal(d.Problems)
	}
	return json.Marshal(d.Text)
}

// String is the details as lines: the text, or one problem a line.
func (d StatusDetails) String() string {
	if len(d.Problems) == 0 {
		return d.Text
	}
	lines := make([]string, len(d.Problems))
	for i, p := range d.Problems {
		lines[i] = p.Detail
	}
	return strings.Join(lines, "\n")
}
