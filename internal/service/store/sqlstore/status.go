package sqlstore

import (
	"strings"

	"github.com/kiln-project/kiln/internal/service/store"
)

// ComposeStatusSQL is store.ComposeStatus as a SQL expression over a row
// of the composes table (named composes in the query), for the queries
// that filter or count composes by status. lastKind is the placeholder
// that holds the type of a compose's last job, "?1" or "$3". The
// expression is generated from store.ComposeStatusRules, so it cannot
// drift from the Go function; the states are written as literals, which
// lets the planner match partial indexes on state.
func ComposeStatusSQL(lastKind string) string {
	var b strings.Builder
	b.WriteString("CASE")
	for _, r := range store.ComposeStatusRules() {
		b.WriteString("\n\tWHEN EXISTS (SELECT 1 FROM jobs j WHERE j.compose_id = composes.id")
		if r.OfLastKind {
			b.WriteString(" AND j.type = " + lastKind)
		}
		quoted := make([]string, len(r.States))
		for i, s := range r.States {
			quoted[i] = literal(s)
		}
		b.WriteString(" AND j.state IN (" + strings.Join(quoted, ", ") + ")) THEN " + literal(r.Status))
	}
	b.WriteString("\n\tELSE " + literal(store.ComposePending) + " END")
	return b.String()
}

// literal quotes s as a SQL string literal.
func literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
