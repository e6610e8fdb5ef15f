//go:build windows

package watcher

const caseInsensitive = true

func watchLimitHint(error) string { return "" }
