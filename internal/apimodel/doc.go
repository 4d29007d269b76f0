// Package apimodel is the shape of kiln's REST API (the image-builder v1
// API that "kiln serve" answers): its request and response types, the
// declared table that maps the API's customizations onto the blueprint
// model, and the translations in both directions that read that table.
//
// The server (internal/service/api) and clients of the API (the CLI's
// compose and blueprint push/pull verbs, through internal/apiclient) both
// import it, so it holds nothing of the server: no store, no SQL, no
// artifacts, no HTTP handlers. Its name says what it holds: the API's
// model, apart from whoever serves or calls it.
package apimodel
