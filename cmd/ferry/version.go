package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print ferry's version (also: ferry --version)",
		Example: "  ferry version",
		Args:    noArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(a.stdout, versionString())
		},
	}
}

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = ""

func versionString() string {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += "+" + s.Value[:12]
				}
			}
		}
	}
	return fmt.Sprintf("ferry %s (%s %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
