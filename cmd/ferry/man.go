//go:build man

package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// addManCmd adds "ferry __man DIR", in a build with -tags man only (make man):
// it writes a man page for ferry and for each of its commands into DIR
// (ferry.1, ferry-run.1, ferry-journal-export.1, ...). The shipped binary
// carries no man page generator.
func addManCmd(root *cobra.Command) {
	root.AddCommand(&cobra.Command{
		Use:    "__man DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			root.DisableAutoGenTag = true
			// Dated SOURCE_DATE_EPOCH when set (reproducible), else today.
			return doc.GenManTree(root, &doc.GenManHeader{Section: "1", Source: versionString(), Manual: "ferry manual"}, args[0])
		},
	})
}
