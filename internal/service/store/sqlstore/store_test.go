package sqlstore

import "testing"

func TestPlaceholders(t *testing.T) {
	query := `SELECT 1 FROM t WHERE a = $1 AND b = $2 LIMIT $10`
	for _, tc := range []struct {
		placeholder, want string
	}{
		{"$", query},
		{"?", `SELECT 1 FROM t WHERE a = ?1 AND b = ?2 LIMIT ?10`},
	} {
		s := &Store{D: Dialect{Placeholder: tc.placeholder}}
		if got := s.q(query); got != tc.want {
			t.Errorf("with %q placeholders: %q, want %q", tc.placeholder, got, tc.want)
		}
	}
}
