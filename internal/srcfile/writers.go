package srcfile

// Writers are the files other processes hold open for writing, as far as
// this process can see (OpenWriters).
type Writers struct {
	// Supported: the platform lets ferry look (Linux: /proc).
	Supported bool
	// Hidden counts the processes whose open files could not be inspected
	// (another user's, without the right to look: root sees all).
	Hidden int
	open   map[ID]bool
}

// Holds reports whether a process holds the file id open for writing.
func (w Writers) Holds(id ID) bool { return w.open[id] }
