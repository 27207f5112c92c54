// Package migrations holds scribeq's goose SQL migrations, embedded so the
// binary can create and upgrade its schema by itself. It is its own package
// because go:embed cannot reach parent directories.
package migrations

import "embed"

// FS holds the NNNNN_name.sql files.
//
//go:embed *.sql
var FS embed.FS
