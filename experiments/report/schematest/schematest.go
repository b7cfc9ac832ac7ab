// Package schematest validates report.json files against the published
// JSON Schema of the report, docs/report.schema.json, for tests: those of
// the report package (the model and the documentation in step with the
// schema) and those that run real experiments (what a run writes obeys it).
package schematest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SchemaFile is the schema's path from the repository root.
const SchemaFile = "docs/report.schema.json"

// Path returns the schema's path, found from the working directory (a
// package directory of the module while tests run) upwards.
func Path() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", SchemaFile, err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, filepath.FromSlash(SchemaFile)), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find %s: no go.mod above the working directory", SchemaFile)
		}
		dir = parent
	}
}

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	path, err := Path()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // date-time is checked, not only annotated
	if err := c.AddResource(path, doc); err != nil {
		return nil, fmt.Errorf("add %s: %w", path, err)
	}
	sch, err := c.Compile(path)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", path, err)
	}
	return sch, nil
})

// Check validates one report.json document against the schema.
func Check(reportJSON []byte) error {
	sch, err := compiled()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(reportJSON))
	if err != nil {
		return fmt.Errorf("report.json is not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("report.json does not match %s:\n%v", SchemaFile, ve)
		}
		return err
	}
	return nil
}

// ValidateDir fails tb unless dir/report.json exists and matches the
// schema; it returns the document.
func ValidateDir(tb testing.TB, dir string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		tb.Fatalf("report.json: %v", err)
	}
	if err := Check(data); err != nil {
		tb.Errorf("%s: %v", filepath.Join(dir, "report.json"), err)
	}
	return data
}
