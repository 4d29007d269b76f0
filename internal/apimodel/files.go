package apimodel

import (
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// DecodeFiles decodes the data of each file whose data_encoding is
// base64 (image-builder's frontend sends file contents so), on a copy of
// cust; data_encoding itself goes, as the blueprint has no such field.
// cust is not changed. Data that is not base64, or not UTF-8 text once
// decoded (a blueprint's files are text), is a problem at its field.
func DecodeFiles(cust map[string]any) (map[string]any, []Problem) {
	files, _ := cust["files"].([]any)
	if files == nil {
		return cust, nil
	}
	out := make(map[string]any, len(cust))
	for k, v := range cust {
		out[k] = v
	}
	var problems []Problem
	decoded := make([]any, 0, len(files))
	for i, f := range files {
		m, ok := f.(map[string]any)
		if !ok {
			decoded = append(decoded, f)
			continue
		}
		c := make(map[string]any, len(m))
		for k, v := range m {
			c[k] = v
		}
		enc, _ := c["data_encoding"].(string)
		delete(c, "data_encoding")
		if data, ok := c["data"].(string); ok && enc == "base64" {
			where := fmt.Sprintf("customizations.files[%d].data", i)
			raw, err := base64.StdEncoding.DecodeString(data)
			switch {
			case err != nil:
				problems = append(problems, Problem{Field: where, Message: "data_encoding is base64 but this is not base64 (standard alphabet, padded); encode the contents again, or send them as they are with data_encoding plain"})
			case !utf8.Valid(raw):
				problems = append(problems, Problem{Field: where, Message: "the decoded contents are not UTF-8 text; a blueprint's files are text"})
			default:
				c["data"] = string(raw)
			}
		}
		decoded = append(decoded, c)
	}
	out["files"] = decoded
	return out, problems
}
