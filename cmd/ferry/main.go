// Command ferry watches instrument output folders and moves every settled
// file, verified, to research storage (S3-compatible object stores or a
// folder), journaling each step so that nothing is lost or sent twice.
// `ferry --help` lists its verbs. This package is the command line
// (github.com/spf13/cobra): flags, rendering and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-data/ferry/internal/service"
)

// Exit codes, defined in internal/service: the systemd unit relies on them.
const (
	exitOK     = service.ExitOK
	exitFailed = service.ExitFailed // the run ended with files not uploaded, or a runtime error
	exitUsage  = service.ExitUsage  // bad command line or configuration: nothing was started
)

func main() {
	stop := startProfile(os.Getenv("FERRY_CPUPROFILE"))
	code := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	writeHeapProfile(os.Getenv("FERRY_MEMPROFILE"))
	os.Exit(code)
}

// writeHeapProfile writes the heap profile as of the last garbage
// collection to path (for `go tool pprof`; inuse_space is what was live),
// when path is set: FERRY_MEMPROFILE, for developers' benchmarks.
func writeHeapProfile(path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferry: FERRY_MEMPROFILE: %v\n", err)
	}
}

// startProfile writes a CPU profile of the whole process to path (for
// `go tool pprof`), when path is set: FERRY_CPUPROFILE, for developers'
// benchmarks (BENCHMARKS.md). It returns the function that ends it.
func startProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferry: FERRY_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// run runs the command line args and returns ferry's exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv, defaultConfig: "/etc/ferry/ferry.toml"} // the packages'
	if runtime.GOOS == "windows" {
		a.defaultConfig = `C:\ProgramData\ferry\ferry.toml` // packaging/windows/INSTALL.txt's
	}
	return a.run(ctx, args)
}

// env is how commands read the environment (FERRY_CONFIG, credentials).
type env func(string) (string, bool)

// app is one run of the command line: its output streams, its environment
// and where the packaged configuration would be.
type app struct {
	stdout, stderr io.Writer
	getenv         env
	defaultConfig  string // used when neither --config nor FERRY_CONFIG says, if it exists
}

// exitCode is how a verb's RunE ends with a code other than 0, once it has
// said why. Any other error a command returns is a bad command line.
type exitCode int

func (c exitCode) Error() string { return "exit code " + strconv.Itoa(int(c)) }

// done is a verb's exit code as its RunE's error.
func done(code int) error {
	if code == exitOK {
		return nil
	}
	return exitCode(code)
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.root()
	root.SetArgs(gnuFlags(root, args))
	cmd, err := root.ExecuteContextC(ctx)
	var code exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	}
	// cobra's errors (an unknown command or flag, a flag without its
	// value, a missing required flag) and the verbs' own: the command line.
	msg, hint, _ := strings.Cut(err.Error(), "\n\nDid you mean this?\n")
	if hint != "" {
		msg += " (did you mean " + strings.Join(strings.Fields(hint), " or ") + "?)"
	}
	fmt.Fprintf(a.stderr, "%s: %s\nRun '%s --help' for usage.\n", cmd.CommandPath(), msg, cmd.CommandPath())
	return exitUsage
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Move settled instrument files, verified, to research storage",
		Long: `ferry watches the folders instruments write into and uploads each file, once
settled and hashed (SHA-256), to S3-compatible storage or a folder,
journaling every step first, so that nothing is lost or sent twice.

The configuration is --config FILE, else $FERRY_CONFIG, else
` + a.defaultConfig + ` if it exists. Exit codes: 0 ok, 1 files not
uploaded or a runtime error, 2 bad command line or configuration.`,
		Example: `  ferry run --config config.example.toml   # the built-in example: demo/incoming -> demo/archive
  ferry status                              # the packaged configuration, or $FERRY_CONFIG
  ferry run --help                          # any command's flags and examples`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		// Without a command: what there is, on stderr, and exit 2.
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(a.stderr, cmd.UsageString())
			return exitCode(exitUsage)
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.AddCommand(a.runCmd(), a.statusCmd(), a.configCmd(), a.journalCmd(), a.dlqCmd(), a.datasetsCmd(), a.datasetCmd(), a.reclaimCmd(), a.metadataCmd(),
		a.installCmd(), a.serviceCmd("uninstall"), a.serviceCmd("start"), a.serviceCmd("stop"), a.serviceCmd("restart"),
		a.versionCmd())
	addManCmd(root)
	// cobra's own: "completion" wants a shell, "help" a command.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			needCommand(c)
		} else if c.Name() == "help" {
			c.Args = func(_ *cobra.Command, args []string) error { _, _, err := root.Find(args); return err }
		}
	}
	return root
}

// group is a command that only holds others (needCommand).
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short}
	for _, s := range subs { // an example of each
		c.Example = strings.TrimPrefix(c.Example+"\n"+strings.SplitN(s.Example, "\n", 2)[0], "\n")
	}
	c.AddCommand(subs...)
	needCommand(c)
	return c
}

// needCommand makes c, which holds commands, a bad command line without
// one of them (cobra would show its help and exit 0).
func needCommand(c *cobra.Command) {
	c.Args = cobra.NoArgs // "unknown command"
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		var names []string
		for _, s := range cmd.Commands() {
			names = append(names, s.Name())
		}
		return fmt.Errorf("give a command: %s", strings.Join(names, ", "))
	}
}

// noArgs is cobra.NoArgs saying what was given.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("takes no arguments (got %q)", args)
	}
	return nil
}

// configVerb makes c a verb that takes no arguments and works on the
// configuration file (--config, $FERRY_CONFIG, the packaged one): run is
// its work, given the file's path; it returns the exit code.
func (a *app) configVerb(c *cobra.Command, run func(ctx context.Context, path string) int) *cobra.Command {
	var configFlag string
	c.Args = noArgs
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		return a.withConfig(configFlag, func(path string) int { return run(cmd.Context(), path) })
	}
	a.configFlag(c, &configFlag)
	return c
}

// configFlag adds --config to c, into p.
func (a *app) configFlag(c *cobra.Command, p *string) {
	c.Flags().StringVar(p, "config", "", "the configuration file (TOML); default $FERRY_CONFIG, else "+a.defaultConfig+" if it exists")
	c.MarkFlagFilename("config", "toml")
}

// withConfig runs fn, a verb's work, with its configuration file: --config
// (flag), else $FERRY_CONFIG, else the packaged configuration when it
// exists. None of them is a bad command line that names all three.
func (a *app) withConfig(flag string, fn func(path string) int) error {
	path, _ := a.getenv("FERRY_CONFIG")
	if flag != "" {
		path = flag
	}
	if path == "" {
		if _, err := os.Stat(a.defaultConfig); err != nil {
			return fmt.Errorf("no configuration file: --config FILE is not given, FERRY_CONFIG is not set, and %s does not exist", a.defaultConfig)
		}
		path = a.defaultConfig
	}
	return done(fn(path))
}

// gnuFlags rewrites the single-dash long flags ferry took before (-config,
// -once) as GNU flags, for old scripts: only the flags of the command args
// name, not their values, nor anything after "--".
func gnuFlags(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil {
		return args
	}
	out := slices.Clone(args)
	for i := 0; i < len(out) && out[i] != "--"; i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(out[i], "-"), "=")
		if f := cmd.Flags().Lookup(name); f != nil && len(name) > 1 && strings.HasPrefix(out[i], "-") {
			if !strings.HasPrefix(out[i], "--") {
				out[i] = "-" + out[i]
			}
			if !hasValue && f.NoOptDefVal == "" {
				i++ // its value
			}
		}
	}
	return out
}
