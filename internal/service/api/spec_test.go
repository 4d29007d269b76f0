package api

import (
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/apimodel"
)

func TestSpecLoads(t *testing.T) {
	s, err := loadSpec()
	require.NoError(t, err)
	require.NotEmpty(t, s.doc.Paths.Map())
}

// objectProperties are the properties of an object schema, or of a
// list's items when they are objects; nil for anything else.
func objectProperties(s *openapi3.Schema) (props openapi3.Schemas, list bool) {
	if s.Type.Is("array") && s.Items != nil {
		return s.Items.Value.Properties, true
	}
	return s.Properties, false
}

// checkAgainstSpec checks fields against an object schema's properties,
// both ways: every property has a row, every row a property, of the same
// shape; apiPath and bpPath are where the object is in a request and in
// the blueprint.
func checkAgainstSpec(t *testing.T, props openapi3.Schemas, fields []apimodel.Field, apiPath, bpPath string) {
	t.Helper()
	for name := range props {
		assert.True(t, slices.ContainsFunc(fields, func(f apimodel.Field) bool { return f.API == name }),
			"the OpenAPI document's %s%s has no row in apimodel.Customizations", apiPath, name)
	}
	for _, f := range fields {
		ref, ok := props[f.API]
		if !assert.True(t, ok, "apimodel.Customizations maps %s%s, which the OpenAPI document does not have", apiPath, f.API) {
			continue
		}
		s := ref.Value
		if f.Blueprint == "" {
			assert.True(t, s.ReadOnly || f.Note != "", "%s%s: a field no blueprint field holds is read-only or says why", apiPath, f.API)
			continue
		}
		inner, list := objectProperties(s)
		api := apiPath + f.API
		bp := bpPath + f.Blueprint
		switch f.Kind {
		case apimodel.ObjectList:
			require.True(t, list && len(inner) > 0, "%s is a list of objects in the document", api)
			api, bp = api+"[0]", bp+"[0]"
		case apimodel.Object:
			require.True(t, !list && len(inner) > 0, "%s is an object in the document", api)
		case apimodel.NameList:
			require.True(t, list && s.Items.Value.Type.Is("string"), "%s is a list of names in the document", api)
			api, bp = api+"[0]", bp+"[0].name"
		default:
			assert.Empty(t, inner, "%s has fields in the document but none in the table", api)
		}
		// The blueprint validator's path for the field is the request's.
		assert.Equal(t, api, apimodel.RequestPath(bp), "the blueprint's %s is the request's %s", bp, api)
		if f.Kind == apimodel.Object || f.Kind == apimodel.ObjectList {
			checkAgainstSpec(t, inner, f.Items, api+".", bp+".")
		}
	}
}

// The OpenAPI document's customizations, apimodel's table and so both
// translations cannot drift apart: every customization the document
// declares (and every field of its items) maps to a blueprint field and
// back through the table, and every row of the table is in the document.
func TestSpecCustomizationsMatchTheTable(t *testing.T) {
	s, err := loadSpec()
	require.NoError(t, err)
	cust := s.doc.Components.Schemas["Customizations"]
	require.NotNil(t, cust)
	checkAgainstSpec(t, cust.Value.Properties, apimodel.Customizations, "customizations.", "")
	// A compose request and a blueprint carry the same customizations.
	for _, name := range []string{"ComposeRequest", "CreateBlueprintRequest", "BlueprintResponse"} {
		assert.Same(t, cust.Value, s.doc.Components.Schemas[name].Value.Properties["customizations"].Value, name)
	}
}
