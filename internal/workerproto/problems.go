package workerproto

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/kiln-project/kiln/blueprint"
)

// ProblemsOf are the blueprint problems err carries (a blueprint.Errors
// anywhere in its chain), or nil when it carries none.
func ProblemsOf(err error) []Problem {
	var errs blueprint.Errors
	if !errors.As(err, &errs) {
		return nil
	}
	out := make([]Problem, 0, len(errs))
	for _, p := range errs {
		out = append(out, Problem{Field: p.Path, Message: p.Message})
	}
	return out
}

// storedDetails is how a failure with problems keeps them in the one
// free-form details text a job's failure is stored with.
type storedDetails struct {
	Details  string    `json:"details,omitempty"`
	Problems []Problem `json:"problems"`
}

// EncodeDetails is the details text to store for a failure: details
// itself when there are no problems, else a JSON object holding both,
// which DecodeDetails reads back.
func EncodeDetails(details string, problems []Problem) string {
	if len(problems) == 0 {
		return details
	}
	b, err := json.Marshal(storedDetails{Details: details, Problems: problems})
	if err != nil {
		return details
	}
	return string(b)
}

// DecodeDetails splits a stored details text into the details and the
// problems EncodeDetails put in it; text it did not write comes back as
// it is, with no problems.
func DecodeDetails(stored string) (details string, problems []Problem) {
	if !bytes.HasPrefix([]byte(stored), []byte("{")) {
		return stored, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(stored)))
	dec.DisallowUnknownFields()
	var sd storedDetails
	if err := dec.Decode(&sd); err != nil || len(sd.Problems) == 0 || dec.More() {
		return stored, nil
	}
	for _, p := range sd.Problems {
		if p.Message == "" {
			return stored, nil
		}
	}
	return sd.Details, sd.Problems
}
