//go:build !man

package main

import "github.com/spf13/cobra"

// manCmd is nil: the man page generator is only in a build with -tags man
// (see man.go).
func manCmd(*cobra.Command) *cobra.Command { return nil }
