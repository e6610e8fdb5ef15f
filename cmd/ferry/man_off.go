//go:build !man

package main

import "github.com/spf13/cobra"

// addManCmd adds nothing: the man page generator is only in a build with
// -tags man (see man.go).
func addManCmd(*cobra.Command) {}
