package daemon

import "os"

const reloadHint = "; restart the service after editing it"

// notifyReload does nothing on Windows, which has no SIGHUP: edits are
// noticed through the file watch.
func notifyReload(chan<- os.Signal) {}
