package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/apimodel"
)

// The API's customizations use the image-builder service's JSON names; the
// blueprint package (one validator for the CLI and the API) uses osbuild's
// blueprint names. apimodel.Customizations declares how one maps onto the
// other.

// blueprintFromRequest builds the blueprint a compose request describes and
// validates it; problems come back with the request's field paths.
func blueprintFromRequest(name string, cust map[string]any) (*blueprint.Blueprint, error) {
	bp, problems := blueprintFromRequestAll(name, cust)
	if len(problems) > 0 {
		return nil, requestProblems(problems)
	}
	return bp, nil
}

// blueprintFromRequestAll translates customizations into a blueprint and
// gives back what decoded with its problems (in blueprint paths), so the
// image types can check the rest in the same answer.
func blueprintFromRequestAll(name string, cust map[string]any) (*blueprint.Blueprint, blueprint.Errors) {
	return apimodel.BlueprintFromCustomizationsAll(name, cust)
}

// imageBuilderFields is cust with image-builder's fields that the
// blueprint has in another form mapped onto it: repositories onto apt
// sources for the distribution (see apimodel.DebianRepositories), base64
// file data decoded (apimodel.DecodeFiles); and the problems of those
// fields. cust is not changed.
func (s *Server) imageBuilderFields(distribution string, cust map[string]any) (map[string]any, error) {
	suite := ""
	if d, err := s.cfg.Distros.Distro(distribution); err == nil {
		suite = d.Codename
	}
	out, problems := apimodel.DebianRepositories(cust, suite)
	out, fileProblems := apimodel.DecodeFiles(out)
	problems = append(problems, fileProblems...)
	if len(problems) == 0 {
		return out, nil
	}
	var ps []problem
	for _, p := range problems {
		ps = append(ps, problem{Field: p.Field, Message: p.Message})
	}
	return out, problemsError(http.StatusBadRequest, ps)
}

// requestProblems re-labels a blueprint's problems with request paths;
// each names its field.
func requestProblems(err error) error {
	var errs blueprint.Errors
	if !errors.As(err, &errs) {
		return newError(400, err.Error())
	}
	var ps []problem
	for _, p := range errs {
		ps = append(ps, problem{Field: requestField(p.Path), Message: p.Message})
	}
	return problemsError(400, ps)
}

// requestField is the request's path of a field of the blueprint it was
// translated into.
func requestField(blueprintPath string) string {
	path := apimodel.RequestPath(blueprintPath)
	if path == "name" {
		path = "image_name"
	}
	return path
}

// redactPasswords replaces each user's password by hasPassword: the stored
// and returned request never holds one.
func redactPasswords(cust map[string]any) {
	users, _ := cust["users"].([]any)
	for _, u := range users {
		if m, ok := u.(map[string]any); ok {
			if _, ok := m["password"]; ok {
				delete(m, "password")
				m["hasPassword"] = true
			}
		}
	}
}

// blueprintName makes a valid blueprint name from an image name.
func blueprintName(imageName string) string {
	var b strings.Builder
	for _, r := range imageName {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "image"
	}
	return b.String()
}
