// Command ferry watches instrument output folders and moves every settled
// file, verified, to research storage (S3-compatible object stores or a
// folder), journaling each step so that nothing is lost or sent twice.
//
// Usage:
//
//	ferry run --config FILE          run until stopped (Ctrl-C, SIGTERM)
//	ferry run --once --config FILE   upload what is there now, then exit
//	ferry journal export|verify|state|archive ...  the event log, for audits
//	ferry journal rebuild --config FILE   rebuild a corrupt or lost journal
//	ferry dlq list|retry|drop ...          the dead-letter list
//	ferry status --config FILE [--json]   what the daemon is doing
//	ferry install --config FILE [--user NAME]   install as a service
//	ferry uninstall|start|stop|restart     manage the installed service
//	ferry version                    print the version
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ferry-data/ferry/internal/service"
)

// Exit codes, defined in internal/service: the systemd unit relies on them.
const (
	exitOK     = service.ExitOK
	exitFailed = service.ExitFailed // the run ended with files not uploaded, or a runtime error
	exitUsage  = service.ExitUsage  // bad command line or configuration: nothing was started
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// verbs are ferry's commands by name (version and help aside).
var verbs = map[string]verb{
	"run":       cmdRun,
	"journal":   cmdJournal,
	"dlq":       cmdDLQ,
	"config":    cmdConfig,
	"status":    cmdStatus,
	"install":   cmdInstall,
	"uninstall": cmdService("uninstall"),
	"start":     cmdService("start"),
	"stop":      cmdService("stop"),
	"restart":   cmdService("restart"),
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "--help", "-h":
		usage(stdout)
		return exitOK
	}
	if code, ok := dispatch(ctx, verbs, args, stdout, stderr, getenv); ok {
		return code
	}
	fmt.Fprintf(stderr, "ferry: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `ferry moves settled instrument files, verified, to research storage.

Usage:
  ferry run --config FILE          watch and upload until stopped (Ctrl-C, SIGTERM)
  ferry run --once --config FILE   upload what is in the watched folders now, then exit
                                   (exit 0 when everything landed, 1 when anything did not)
  ferry journal export --config FILE [--format jsonl|csv] [--since T] [--until T]
                       [--batch ID] [--log events|audit] [--out FILE]
                                   a hash-chained log (events, or ferry's own audit
                                   log), one entry per line or row
  ferry journal verify --config FILE [--against-target] | --export FILE
                                   recompute the chains (exit 1 naming the first bad
                                   seq); with --config, replay the events against the
                                   file tables; --against-target: and compare them with
                                   the latest checkpoint on every target (AUDIT.md)
  ferry journal state --config FILE | --export FILE --at T [--batch ID] [--format text|jsonl]
                                   every file with its state, size and sha256 as of T
  ferry journal archive --config FILE --before T --out FILE
                                   move the events older than T to a JSONL archive
  ferry journal rebuild --config FILE [--force]
                                   rebuild a corrupt or lost journal from the watched
                                   folders and what the targets hold
  ferry config check --config FILE [--online]
                                   validate the configuration (--online: reach and
                                   write to every target)
  ferry status --config FILE [--json]
                                   queue, uploads in flight, rate and ETA, breakers, the
                                   last error: from the running daemon, else the journal
  ferry dlq list [--json] --config FILE
  ferry dlq retry ID...|--all --config FILE
  ferry dlq drop ID... --config FILE
                                   the files that failed permanently: list them, queue
                                   them again, or give up on them (the source stays)
  ferry install --config FILE [--user NAME]
                                   install ferry as a service (systemd on Linux, the
                                   service manager on Windows) running this binary with
                                   FILE; --user: the account it runs as
  ferry uninstall | start | stop | restart
                                   manage the installed service (as root / administrator)
  ferry version                    print the version

Exit codes: 0 ok, 1 files not uploaded or a runtime error, 2 bad command line or configuration.
See config.example.toml for every configuration key.
`)
}
