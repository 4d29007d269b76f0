package api

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/kiln-project/kiln/internal/apimodel"
)

// Prefix is where the image-builder API lives.
const Prefix = apimodel.Prefix

//go:embed openapi.yaml
var specYAML []byte

// spec is the loaded OpenAPI document and a router over its operations.
type spec struct {
	doc    *openapi3.T
	router routers.Router
	json   []byte
}

func init() {
	// Blueprint files are imported as TOML: the document checks their
	// size, the blueprint parser the rest.
	openapi3filter.RegisterBodyDecoder("application/toml", openapi3filter.PlainBodyDecoder)
}

func loadSpec() (*spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(specYAML)
	if err != nil {
		return nil, fmt.Errorf("loading the OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is invalid: %w", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	js, err := doc.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return &spec{doc: doc, router: router, json: js}, nil
}
